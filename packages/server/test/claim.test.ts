import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { newId } from "../src/domain/ids.js";
import { claimDeliveries } from "../src/store/claim-deliveries.js";
import { claimTask } from "../src/store/tasks.js";
import { dialects } from "./support/databases.js";
import { type Harness, startHarness } from "./support/harness.js";

describe.each(dialects())("claiming on %s", (dialect) => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness(dialect);
  });
  afterAll(async () => h?.close());

  /** A subscription with one due delivery, written straight into the tables. */
  async function subscriptionWithDue(
    businessId: string,
    state: "active" | "degraded",
    probeAt: number | null,
    dueAt: number,
  ) {
    const now = Date.now();
    const id = newId("subscription");
    await h.ctx.db
      .insertInto("subscription")
      .values({
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
      })
      .execute();
    const eventId = newId("event");
    await h.ctx.db
      .insertInto("event")
      .values({
        id: eventId,
        business_id: businessId,
        name: "appointment.created",
        resource_type: "appointment",
        resource_id: "apt_x",
        payload: "{}",
        created_at: dueAt,
      })
      .execute();
    const deliveryId = newId("delivery");
    await h.ctx.db
      .insertInto("delivery")
      .values({
        id: deliveryId,
        event_id: eventId,
        subscription_id: id,
        business_id: businessId,
        event_name: "appointment.created",
        next_attempt_at: dueAt,
        lease_token: null,
        lease_expires_at: null,
        last_status_code: null,
        last_error: null,
        created_at: dueAt,
        updated_at: dueAt,
      })
      .execute();
    return { id, deliveryId };
  }

  it("is not starved by hundreds of subscriptions that cannot take work", async () => {
    const tenant = await h.tenant();
    const now = Date.now();
    for (let i = 0; i < 210; i++)
      await subscriptionWithDue(tenant.businessId, "degraded", now + 3_600_000, now - 60_000);
    const healthy = await subscriptionWithDue(tenant.businessId, "active", null, now - 1000);
    const { claimed } = await claimDeliveries(h.ctx.adapter, { limit: 10, perEndpoint: 5, leaseMs: 60_000 });
    expect(claimed.map((d) => d.id)).toEqual([healthy.deliveryId]);
  });
});

describe.each(dialects())("recover tasks on %s", (dialect) => {
  it("are taken by one process only, and taken over once their runner is stale", async () => {
    const h = await startHarness(dialect);
    try {
      const tenant = await h.tenant();
      const now = Date.now();
      const task = {
        id: newId("task"),
        business_id: tenant.businessId,
        subscription_id: null,
        kind: "recover",
        state: "queued" as const,
        params: "{}",
        total: 0,
        done: 0,
        error: null,
        created_at: now,
        updated_at: now,
        finished_at: null,
      };
      await h.ctx.db.insertInto("task").values(task).execute();
      const [a, b] = await Promise.all([
        claimTask(h.ctx.db, task.id, now - 60_000, now),
        claimTask(h.ctx.db, task.id, now - 60_000, now),
      ]);
      expect([a, b].sort()).toEqual([false, true]);
      // A live runner's task is left alone; a stale one is taken over.
      expect(await claimTask(h.ctx.db, task.id, now - 60_000, now + 1000)).toBe(false);
      expect(await claimTask(h.ctx.db, task.id, now + 1, now + 61_000)).toBe(true);
    } finally {
      await h.close();
    }
  });
});
