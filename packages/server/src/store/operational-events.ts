/**
 * Operational events (docs/webhooks.md, "Operational events"): events that
 * carehooks itself raises about a business's webhooks and deliveries, written
 * like any other event (the event row, then one delivery per live webhook of
 * the business that asked for it and whose filter matches), except that the
 * webhook an event is about never gets it: a failing endpoint is not told
 * about itself, and one failure cannot feed on itself.
 */
import type { Health } from "../domain/breaker.js";
import type { EventName } from "../domain/event-catalog.js";
import {
  deliveryExhaustedEvent,
  operationalOrigin,
  webhookEventName,
  webhookStateEvent,
} from "../domain/event-payloads.js";
import { newTimedId } from "../domain/ids.js";
import type { DialectAdapter } from "./dialect/adapter.js";
import type { Db } from "./open.js";
import { recordEvent } from "./outbox.js";
import { type LiveSubscription, liveSubscriptionsOf, subscribersOf } from "./subscriptions.js";

export interface OperationalEvent {
  readonly businessId: string;
  readonly name: EventName;
  /** What the event is about: `subscription` or `delivery`, and its id. */
  readonly resourceType: "subscription" | "delivery";
  readonly resourceId: string;
  /** The webhook it is about, which must not receive it. */
  readonly about: string;
  /** Builds the payload with the event's id (also its transaction_id) and time (its id's). */
  readonly payload: (eventId: string, at: number) => string;
  readonly at: number;
}

/**
 * Writes the events and their deliveries in `db`, which is meant to be a
 * transaction: all or none of them (outside one, each event would go on its
 * own, and on SQLite the webhooks' read would wait for the shared
 * transaction's flush). Returns how many deliveries were created.
 */
export async function recordOperationalEvents(
  adapter: DialectAdapter,
  db: Db,
  events: readonly OperationalEvent[],
): Promise<number> {
  const subscriptionsOf = new Map<string, readonly LiveSubscription[]>();
  let deliveries = 0;
  for (const event of events) {
    let subscriptions = subscriptionsOf.get(event.businessId);
    if (subscriptions === undefined) {
      subscriptions = await liveSubscriptionsOf(db, event.businessId);
      subscriptionsOf.set(event.businessId, subscriptions);
    }
    // The event's time is its id's, which its scans by time rely on (store/events.ts).
    const { id, at } = newTimedId("event", event.at);
    const payload = event.payload(id, at);
    const subscriptionIds = subscribersOf(subscriptions, event.name, () => JSON.parse(payload)).filter(
      (subscriptionId) => subscriptionId !== event.about,
    );
    deliveries += await recordEvent(adapter, db, {
      records: [],
      event: {
        id,
        business_id: event.businessId,
        name: event.name,
        resource_type: event.resourceType,
        resource_id: event.resourceId,
        payload,
        created_at: at,
      },
      subscriptionIds,
    });
  }
  return deliveries;
}

/**
 * `webhook.degraded`, `webhook.disabled` or `webhook.recovered` for a
 * subscription whose state just changed to `after`, in the transaction that
 * wrote the change: the event exists exactly when the change does.
 */
export async function webhookStateChanged(
  adapter: DialectAdapter,
  trx: Db,
  subscriptionId: string,
  after: Health,
): Promise<number> {
  const row = await trx
    .selectFrom("subscription")
    .select(["business_id", "endpoint"])
    .where("id", "=", subscriptionId)
    .executeTakeFirst();
  if (!row) return 0;
  const at = Number(after.state_changed_at);
  const facts = {
    webhookId: subscriptionId,
    endpoint: row.endpoint,
    state: after.state,
    reason: after.state_reason,
    failingSince: after.failing_since === null ? null : Number(after.failing_since),
    changedAt: at,
  };
  return recordOperationalEvents(adapter, trx, [
    {
      businessId: row.business_id,
      name: webhookEventName(after.state),
      resourceType: "subscription",
      resourceId: subscriptionId,
      about: subscriptionId,
      payload: (eventId, eventAt) => webhookStateEvent(operationalOrigin(eventId, eventAt, row.business_id), facts),
      at,
    },
  ]);
}

/**
 * `delivery.exhausted` for each of the deliveries (just recorded as failed
 * after their last scheduled attempt), except deliveries of a
 * `delivery.exhausted` event: two dead webhooks must not tell each other
 * about each other forever.
 */
export async function deliveriesExhausted(
  adapter: DialectAdapter,
  trx: Db,
  deliveryIds: readonly string[],
  at: number,
): Promise<number> {
  if (deliveryIds.length === 0) return 0;
  const rows = await trx
    .selectFrom("delivery")
    .select([
      "id",
      "business_id",
      "subscription_id",
      "event_id",
      "event_name",
      "attempts",
      "last_status_code",
      "last_error",
    ])
    .where("id", "in", deliveryIds)
    .where("status", "=", "failed")
    .where("event_name", "!=", "delivery.exhausted")
    .orderBy("id")
    .execute();
  return recordOperationalEvents(
    adapter,
    trx,
    rows.map((row) => ({
      businessId: row.business_id,
      name: "delivery.exhausted" as const,
      resourceType: "delivery" as const,
      resourceId: row.id,
      about: row.subscription_id,
      payload: (eventId: string, eventAt: number) =>
        deliveryExhaustedEvent(operationalOrigin(eventId, eventAt, row.business_id), {
          deliveryId: row.id,
          webhookId: row.subscription_id,
          eventId: row.event_id,
          eventName: row.event_name,
          attempts: Number(row.attempts),
          lastStatusCode: row.last_status_code === null ? null : Number(row.last_status_code),
          lastError: row.last_error,
        }),
      at,
    })),
  );
}
