/**
 * The claim, the dispatcher's next wake-up and the queue's oldest due time
 * find the webhooks with work by walking the index of pending deliveries
 * (store/queue/pending.ts), not by reading every webhook. These check what
 * they answer with idle webhooks before, between and after the ones with
 * work; test/sqlite-plans.test.ts checks SQLite's plans.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { queueLag } from "../src/store/deliveries.js";
import { claimBatch, nextDueIn } from "../src/store/queue/claim.js";
import { beat } from "../src/store/queue/workers.js";
import { dialects } from "./support/databases.js";
import { type Harness, startHarness } from "./support/harness.js";
import { cancelPending, idleWebhooks, pendingDelivery, subscriptionWithDue, webhookRow } from "./support/queue-rows.js";

const WORKER = { id: "wrk_pending", host: "test", pid: 1 };
const LIMITS = { limit: 50, perEndpoint: 5, leaseMs: 60_000, workerId: WORKER.id };

describe.each(dialects())("looking for due work on %s", (dialect) => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness(dialect);
    await beat(h.ctx.adapter, WORKER, { timeoutMs: 3_600_000, leaseMs: 60_000 });
  });
  afterAll(async () => h?.close());

  const idle = (businessId: string, n: number) => idleWebhooks(h.ctx.db, businessId, n);

  it("finds nothing when nothing is pending, however many webhooks there are", async () => {
    const tenant = await h.tenant();
    await idle(tenant.businessId, 40);
    expect(await nextDueIn(h.ctx.adapter)).toBeUndefined();
    expect((await claimBatch(h.ctx.adapter, LIMITS)).claimed).toEqual([]);
    expect(await queueLag(h.ctx.adapter, Date.now())).toEqual({ pending: 0, inFlight: 0, oldestDueMs: 0 });
  });

  it("answers from the webhooks with pending deliveries, wherever their ids fall among idle ones", async () => {
    const tenant = await h.tenant();
    const { db } = h.ctx;
    const now = Date.now();
    await idle(tenant.businessId, 20);
    // Due in 20 s.
    const later = await subscriptionWithDue(db, tenant.businessId, "active", null, now + 20_000);
    await idle(tenant.businessId, 20);
    // Due a second ago, but degraded: its probe may go in 40 s.
    await subscriptionWithDue(db, tenant.businessId, "degraded", now + 40_000, now - 1000);
    // Due a minute ago, but disabled: never sent, yet pending in the queue's depth.
    const disabled = await webhookRow(db, tenant.businessId, "disabled");
    await pendingDelivery(db, tenant.businessId, disabled, now - 60_000);
    await idle(tenant.businessId, 20);

    const dueIn = await nextDueIn(h.ctx.adapter);
    expect(dueIn).toBeGreaterThan(15_000);
    expect(dueIn).toBeLessThanOrEqual(20_000);
    expect((await claimBatch(h.ctx.adapter, LIMITS)).claimed).toEqual([]);
    const lag = await queueLag(h.ctx.adapter, Date.now());
    expect(lag.pending).toBe(3);
    expect(lag.oldestDueMs).toBeGreaterThanOrEqual(60_000);

    // Without the delivery due in 20 s, the next is the degraded webhook's probe.
    await db.updateTable("delivery").set({ status: "cancelled" }).where("id", "=", later.deliveryId).execute();
    const probeIn = await nextDueIn(h.ctx.adapter);
    expect(probeIn).toBeGreaterThan(35_000);
    expect(probeIn).toBeLessThanOrEqual(40_000);

    // A webhook made after all the others, with a delivery due now: the claim takes it and nothing else.
    const due = await subscriptionWithDue(db, tenant.businessId, "active", null, now - 500);
    const { claimed } = await claimBatch(h.ctx.adapter, LIMITS);
    expect(claimed.map((delivery) => delivery.id)).toEqual([due.deliveryId]);
    expect(claimed[0]?.webhook.id).toBe(due.id);
    expect(await nextDueIn(h.ctx.adapter)).toBeGreaterThan(35_000);
    expect((await queueLag(h.ctx.adapter, Date.now())).inFlight).toBe(1);
    await cancelPending(db, tenant.businessId);
  });

  it("cancels at each beat the pending deliveries of deleted and disabled webhooks, and only theirs", async () => {
    const tenant = await h.tenant();
    const { db } = h.ctx;
    const now = Date.now();
    await idle(tenant.businessId, 10);
    const live = await subscriptionWithDue(db, tenant.businessId, "active", null, now + 60_000);
    const disabled = await webhookRow(db, tenant.businessId, "disabled");
    const disabledDelivery = await pendingDelivery(db, tenant.businessId, disabled, now - 1000);
    await idle(tenant.businessId, 10);
    const deleted = await subscriptionWithDue(db, tenant.businessId, "active", null, now + 60_000);
    await db.updateTable("subscription").set({ deleted_at: now }).where("id", "=", deleted.id).execute();

    expect((await beat(h.ctx.adapter, WORKER, { timeoutMs: 3_600_000, leaseMs: 60_000 })).cancelled).toBe(2);
    const rows = await db
      .selectFrom("delivery")
      .select(["id", "status", "last_error"])
      .where("business_id", "=", tenant.businessId)
      .orderBy("id")
      .execute();
    expect(Object.fromEntries(rows.map((row) => [row.id, [row.status, row.last_error]]))).toEqual({
      [live.deliveryId]: ["pending", null],
      [disabledDelivery]: ["cancelled", "subscription deleted or disabled"],
      [deleted.deliveryId]: ["cancelled", "subscription deleted or disabled"],
    });
    await cancelPending(db, tenant.businessId);
  });

  it("takes deliveries from every webhook with due work, the oldest due first", async () => {
    const tenant = await h.tenant();
    const { db } = h.ctx;
    const now = Date.now();
    const due: string[] = [];
    // Ten webhooks with work, each between idle ones, made newest-due first: the walk's order (by id) is
    // the reverse of the order due.
    for (let i = 0; i < 10; i++) {
      await idle(tenant.businessId, 3);
      due.unshift((await subscriptionWithDue(db, tenant.businessId, "active", null, now - 1000 * (i + 1))).deliveryId);
    }
    const first = await claimBatch(h.ctx.adapter, { ...LIMITS, limit: 4 });
    // The four oldest, in no particular order: a claim returns what it leased as the database gives it.
    expect(first.claimed.map((delivery) => delivery.id).sort()).toEqual(due.slice(0, 4).sort());
    const rest = await claimBatch(h.ctx.adapter, LIMITS);
    expect(rest.claimed.map((delivery) => delivery.id).sort()).toEqual(due.slice(4).sort());
  });
});
