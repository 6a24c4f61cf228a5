/**
 * The transactional outbox: an event row and one pending delivery per live
 * subscription of the business that asked for the event, written in the
 * caller's transaction together with the change that caused them. A
 * rollback leaves none of them; a commit leaves all of them.
 */
import { newId } from "../domain/ids.js";
import type { Db } from "./open.js";
import { insertRows, prepare } from "./prepared.js";
import type { EventTable } from "./schema.js";

export type NewEvent = EventTable;

const liveSubscriptionsOf = prepare((db, p: { businessId: string }) =>
  db
    .selectFrom("subscription")
    .select(["id", "event_names"])
    .where("business_id", "=", p.businessId)
    .where("deleted_at", "is", null)
    .where("state", "!=", "disabled"),
);

/** Writes the event and its deliveries; returns how many deliveries were created. */
export async function recordEvent(trx: Db, event: NewEvent): Promise<number> {
  await insertRows(trx, "event", [event]);
  const subscriptions = await liveSubscriptionsOf.all(trx, { businessId: event.business_id });
  const matching = subscriptions.filter((subscription) =>
    (JSON.parse(subscription.event_names) as string[]).includes(event.name),
  );
  if (matching.length === 0) return 0;
  await insertRows(
    trx,
    "delivery",
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
  );
  return matching.length;
}
