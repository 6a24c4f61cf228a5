/**
 * The transactional outbox: an event row and one pending delivery per live
 * subscription of the business that asked for the event, written in the
 * caller's transaction together with the change that caused them. A
 * rollback leaves none of them; a commit leaves all of them.
 */
import { newId } from "../domain/ids.js";
import type { Db } from "./open.js";
import type { EventTable } from "./schema.js";

export type NewEvent = EventTable;

/** Writes the event and its deliveries; returns how many deliveries were created. */
export async function recordEvent(trx: Db, event: NewEvent): Promise<number> {
  await trx.insertInto("event").values(event).execute();
  const subscriptions = await trx
    .selectFrom("subscription")
    .select(["id", "event_names"])
    .where("business_id", "=", event.business_id)
    .where("deleted_at", "is", null)
    .where("state", "!=", "disabled")
    .execute();
  const matching = subscriptions.filter((subscription) =>
    (JSON.parse(subscription.event_names) as string[]).includes(event.name),
  );
  if (matching.length === 0) return 0;
  await trx
    .insertInto("delivery")
    .values(
      matching.map((subscription) => ({
        id: newId("delivery", event.created_at),
        event_id: event.id,
        subscription_id: subscription.id,
        business_id: event.business_id,
        event_name: event.name,
        status: "pending" as const,
        attempts: 0,
        next_attempt_at: event.created_at,
        lease_token: null,
        lease_expires_at: null,
        last_status_code: null,
        last_error: null,
        created_at: event.created_at,
        updated_at: event.created_at,
      })),
    )
    .execute();
  return matching.length;
}
