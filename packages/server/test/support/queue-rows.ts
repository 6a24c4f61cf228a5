/** Webhooks and deliveries written straight into the tables, for tests of the queue's statements. */
import { newId } from "../../src/domain/ids.js";
import type { Db } from "../../src/store/open.js";

/** A webhook of the business, with no deliveries. */
export async function webhookRow(
  db: Db,
  businessId: string,
  state: "active" | "degraded" | "disabled" = "active",
  probeAt: number | null = null,
): Promise<string> {
  const row = webhookValues(businessId, state, probeAt);
  await db.insertInto("subscription").values(row).execute();
  return row.id;
}

/** `n` webhooks of the business with no deliveries, written 500 to a statement. */
export async function idleWebhooks(db: Db, businessId: string, n: number): Promise<void> {
  for (let done = 0; done < n; done += 500) {
    const rows = Array.from({ length: Math.min(500, n - done) }, () => webhookValues(businessId, "active", null));
    await db.insertInto("subscription").values(rows).execute();
  }
}

function webhookValues(businessId: string, state: "active" | "degraded" | "disabled", probeAt: number | null) {
  const now = Date.now();
  const id = newId("subscription");
  return {
    id,
    business_id: businessId,
    endpoint: `https://${id.toLowerCase()}.example.com/`,
    endpoint_key: `https://${id.toLowerCase()}.example.com/`,
    event_names: '["appointment.created"]',
    protocol: "https",
    signing_key: null,
    previous_signing_key: null,
    previous_key_expires_at: null,
    state,
    state_reason: null,
    state_changed_at: now,
    failing_since: null,
    probe_at: probeAt,
    client_id: "cli_x",
    created_by: "cli_x",
    updated_by: "cli_x",
    created_at: now,
    updated_at: now,
    deleted_at: null,
  };
}

/** A subscription with one due delivery. */
export async function subscriptionWithDue(
  db: Db,
  businessId: string,
  state: "active" | "degraded",
  probeAt: number | null,
  dueAt: number,
) {
  const id = await webhookRow(db, businessId, state, probeAt);
  const deliveryId = await pendingDelivery(db, businessId, id, dueAt);
  return { id, deliveryId };
}

/**
 * A pending delivery to a subscription, due at `dueAt`, of a new event of appointment `resourceId`;
 * `deliveryId` names it (ids sort by time, so one made earlier sorts before).
 */
export async function pendingDelivery(
  db: Db,
  businessId: string,
  subscriptionId: string,
  dueAt: number,
  { resourceId = "apt_x", deliveryId = newId("delivery"), ordered = false } = {},
): Promise<string> {
  const eventId = newId("event");
  await db
    .insertInto("event")
    .values({
      id: eventId,
      business_id: businessId,
      name: "appointment.created",
      resource_type: "appointment",
      resource_id: resourceId,
      payload: "{}",
      created_at: Math.min(dueAt, Date.now()),
    })
    .execute();
  await db
    .insertInto("delivery")
    .values({
      id: deliveryId,
      event_id: eventId,
      subscription_id: subscriptionId,
      business_id: businessId,
      event_name: "appointment.created",
      resource_key: ordered ? `appointment:${resourceId}` : null,
      next_attempt_at: dueAt,
      lease_token: null,
      lease_expires_at: null,
      last_status_code: null,
      last_error: null,
      created_at: dueAt,
      updated_at: dueAt,
    })
    .execute();
  return deliveryId;
}

/** Cancels a business's pending deliveries: what a test leaves due is not for the tests after it. */
export async function cancelPending(db: Db, businessId: string): Promise<void> {
  await db
    .updateTable("delivery")
    .set({ status: "cancelled" })
    .where("business_id", "=", businessId)
    .where("status", "=", "pending")
    .execute();
}
