import { firstIdAt } from "../domain/ids.js";
import type { Db } from "./open.js";
import type { EventTable } from "./schema.js";

export type EventRow = EventTable;

export interface EventFilter {
  readonly event_name?: string | undefined;
  readonly resource_id?: string | undefined;
  readonly since?: number | undefined;
  readonly until?: number | undefined;
}

export async function listEvents(
  db: Db,
  businessId: string,
  filter: EventFilter,
  page: { after: string | undefined; limit: number; newestFirst?: boolean },
): Promise<EventRow[]> {
  let query = db.selectFrom("event").selectAll().where("business_id", "=", businessId);
  if (filter.event_name) query = query.where("name", "=", filter.event_name);
  if (filter.resource_id) query = query.where("resource_id", "=", filter.resource_id);
  // An event's time is its id's (eventsSince): the bound on the id narrows the index's range.
  if (filter.since !== undefined) {
    query = query.where("created_at", ">=", filter.since).where("id", ">=", firstIdAt("event", filter.since));
  }
  if (filter.until !== undefined) query = query.where("created_at", "<", filter.until);
  if (page.after) query = query.where("id", page.newestFirst ? "<" : ">", page.after);
  return query
    .orderBy("id", page.newestFirst ? "desc" : "asc")
    .limit(page.limit)
    .execute();
}

export async function findEvent(db: Db, businessId: string, id: string): Promise<EventRow | undefined> {
  return db
    .selectFrom("event")
    .selectAll()
    .where("id", "=", id)
    .where("business_id", "=", businessId)
    .executeTakeFirst();
}

/**
 * The events of one or more businesses written at or after `since` (ms), in id order, after the
 * event `afterId` when given: a page of a tail scan. An event's time is its id's (domain/ids.ts,
 * newTimedId), so id order is time order and "at or after `since`" is a range of the index on
 * (business_id, id). Ids sort by time but commits land out of order, so tailers re-scan a trailing
 * window with this and de-duplicate, rather than trusting "id greater than the last one seen".
 */
export async function eventsSince(
  db: Db,
  businessIds: string | readonly string[],
  since: number,
  limit: number,
  afterId?: string,
): Promise<EventRow[]> {
  let query = db
    .selectFrom("event")
    .selectAll()
    .where("business_id", "in", typeof businessIds === "string" ? [businessIds] : businessIds)
    .where("id", ">=", firstIdAt("event", since))
    // An event written before its time was its id's may carry an earlier one: it is not "since".
    .where("created_at", ">=", since);
  if (afterId !== undefined) query = query.where("id", ">", afterId);
  return query.orderBy("id").limit(limit).execute();
}
