import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { newId } from "../src/domain/ids.js";
import { type ClaimedDelivery, type ClaimLimits, claimBatch, LEASE_AHEAD } from "../src/store/queue/claim.js";
import { type Completion, completeBatch } from "../src/store/queue/complete.js";
import { beat, reconcileInFlight, releaseLeases } from "../src/store/queue/workers.js";
import { claimTask } from "../src/store/tasks.js";
import { succeeded } from "./support/completions.js";
import { dialects } from "./support/databases.js";
import { booking } from "./support/fixtures.js";
import { type Harness, startHarness } from "./support/harness.js";
import { cancelPending, pendingDelivery, subscriptionWithDue } from "./support/queue-rows.js";

describe.each(dialects())("claiming on %s", (dialect) => {
  let h: Harness;
  const limits: ClaimLimits = { limit: 100, perEndpoint: 5, leaseMs: 60_000, workerId: "wrk_test" };
  beforeAll(async () => {
    h = await startHarness(dialect);
    // The claiming worker is alive: its leases are returned only once they expire.
    await beat(h.ctx.adapter, { id: limits.workerId, host: "test", pid: 1 }, { timeoutMs: 3_600_000, leaseMs: 60_000 });
  });
  afterAll(async () => h?.close());

  it("is not starved by hundreds of subscriptions that cannot take work", async () => {
    const tenant = await h.tenant();
    const now = Date.now();
    for (let i = 0; i < 210; i++)
      await subscriptionWithDue(h.ctx.db, tenant.businessId, "degraded", now + 3_600_000, now - 60_000);
    const healthy = await subscriptionWithDue(h.ctx.db, tenant.businessId, "active", null, now - 1000);
    const { claimed } = await claimBatch(h.ctx.adapter, { ...limits, limit: 10 });
    expect(claimed.map((d) => d.id)).toEqual([healthy.deliveryId]);
  });

  it("gives a busy endpoint its cap even when most candidates are held back by ordering", async () => {
    const tenant = await h.tenant();
    const now = Date.now();
    // Nine per-resource webhooks whose due delivery waits for an earlier one of its resource, due in an hour:
    // each is a candidate (free slots, something due) that gives nothing.
    for (let i = 0; i < 9; i++) {
      const earlierId = newId("delivery");
      const held = await subscriptionWithDue(h.ctx.db, tenant.businessId, "active", null, now - 60_000);
      await h.ctx.db.updateTable("subscription").set({ ordering: "per_resource" }).where("id", "=", held.id).execute();
      await h.ctx.db
        .updateTable("delivery")
        .set({ resource_key: "appointment:apt_x" })
        .where("id", "=", held.deliveryId)
        .execute();
      await pendingDelivery(h.ctx.db, tenant.businessId, held.id, now + 3_600_000, {
        deliveryId: earlierId,
        ordered: true,
      });
    }
    // One webhook with a backlog and a cap of its own below the server's: ten candidates share a claim of
    // ten, one each, but it may have its cap.
    const busy = await subscriptionWithDue(h.ctx.db, tenant.businessId, "active", null, now - 30_000);
    const ownCap = limits.perEndpoint - 1;
    await h.ctx.db.updateTable("subscription").set({ max_in_flight: ownCap }).where("id", "=", busy.id).execute();
    for (let i = 0; i < 11; i++)
      await pendingDelivery(h.ctx.db, tenant.businessId, busy.id, now - 20_000, { resourceId: `apt_${i}` });
    const { claimed } = await claimBatch(h.ctx.adapter, { ...limits, limit: 10 });
    await cancelPending(h.ctx.db, tenant.businessId);
    expect(claimed.every((d) => d.subscription_id === busy.id)).toBe(true);
    expect(claimed).toHaveLength(ownCap);
  });

  it("leases each webhook the lookahead it is asked for, and nothing more once it holds that much", async () => {
    const tenant = await h.tenant();
    const now = Date.now();
    const busy = await subscriptionWithDue(h.ctx.db, tenant.businessId, "active", null, now - 30_000);
    for (let i = 0; i < 24; i++)
      await pendingDelivery(h.ctx.db, tenant.businessId, busy.id, now - 20_000, { resourceId: `apt_${i}` });
    const leased = async (leaseAhead: number) =>
      (await claimBatch(h.ctx.adapter, { ...limits, leaseAhead })).claimed.filter((d) => d.subscription_id === busy.id)
        .length;
    expect(await leased(2)).toBe(2 * limits.perEndpoint);
    // Holding more than a smaller lookahead allows: nothing, and no error.
    expect(await leased(1)).toBe(0);
    expect(await leased(3)).toBe(limits.perEndpoint);
    await cancelPending(h.ctx.db, tenant.businessId);
  });

  // Registered for the dialect it concerns only (PostgreSQL keeps the count; SQLite counts rows).
  if (dialect === "postgres")
    it("sets right an in-flight count that disagrees with the deliveries, freeing an endpoint it held back", async () => {
      const tenant = await h.tenant();
      const now = Date.now();
      const sending = await subscriptionWithDue(h.ctx.db, tenant.businessId, "active", null, now - 2000);
      const held = (await claimBatch(h.ctx.adapter, limits)).claimed.filter((d) => d.id === sending.deliveryId);
      expect(held).toHaveLength(1);
      const stuck = await subscriptionWithDue(h.ctx.db, tenant.businessId, "active", null, now - 1000);
      // A hand edit (or triggers off during a restore): one count too high, one far above the allowance.
      const drift = (id: string, n: number) =>
        h.ctx.db
          .updateTable("subscription")
          .set({ in_flight: n } as never)
          .where("id", "=", id)
          .execute();
      await drift(sending.id, 7);
      const farAbove = 2 * LEASE_AHEAD * limits.perEndpoint;
      await drift(stuck.id, farAbove);
      const before = await claimBatch(h.ctx.adapter, limits);
      expect(before.claimed.map((d) => d.id)).not.toContain(stuck.deliveryId);

      const fixed = await reconcileInFlight(h.ctx.adapter);
      expect(fixed).toEqual(
        expect.arrayContaining([
          { subscriptionId: sending.id, was: 7, now: 1 },
          { subscriptionId: stuck.id, was: farAbove, now: 0 },
        ]),
      );
      expect(fixed).toHaveLength(2);
      const row = await h.ctx.db
        .selectFrom("subscription")
        .select(["in_flight", "sender"] as never[])
        .where("id", "=", stuck.id)
        .executeTakeFirstOrThrow();
      expect(row).toEqual({ in_flight: 0, sender: null });
      // Nothing left to set right, and the endpoint it held back gets its delivery.
      expect(await reconcileInFlight(h.ctx.adapter)).toEqual([]);
      const after = await claimBatch(h.ctx.adapter, limits);
      expect(after.claimed.map((d) => d.id)).toContain(stuck.deliveryId);
    });
  if (dialect === "postgres")
    it("keeps each webhook's in-flight count and sender through statements moving one webhook's deliveries or several", async () => {
      const { held } = await threeClaimed();
      const subscriptions = held.map((d) => d.subscription_id);
      const counts = async () => {
        const rows = await h.ctx.db
          .selectFrom("subscription")
          .select(["id", "in_flight", "sender"] as never[])
          .where("id", "in", subscriptions)
          .execute();
        type Row = { id: string; in_flight: number; sender: string | null };
        const byId = new Map((rows as Row[]).map((row) => [row.id, row]));
        return subscriptions.map((id) => {
          const row = byId.get(id);
          return [row?.in_flight, row?.sender];
        });
      };
      // The counts only: which path locks what (migration 0017) changes no count, and is not seen here.
      // One claim leased a delivery of each of three webhooks (the trigger's path for several).
      expect(await counts()).toEqual(subscriptions.map(() => [1, limits.workerId]));
      // An outcome of one webhook's delivery alone (locks its one row in the update).
      const [one, ...rest] = held as [ClaimedDelivery, ...ClaimedDelivery[]];
      expect((await completeBatch(h.ctx.adapter, [succeeded(one)])).moved.size).toBe(1);
      expect(await counts()).toEqual([[0, null], ...rest.map(() => [1, limits.workerId])]);
      // The other two given back together.
      const released = await releaseLeases(
        h.ctx.adapter,
        rest.map((d) => ({ id: d.id, token: d.lease_token })),
      );
      expect(released).toBe(2);
      expect(await counts()).toEqual(subscriptions.map(() => [0, null]));
      expect(await reconcileInFlight(h.ctx.adapter)).toEqual([]);
    });
  else
    it("has no in-flight counts to set right on SQLite (it counts the rows)", async () => {
      expect(await reconcileInFlight(h.ctx.adapter)).toEqual([]);
    });

  /** Three active subscriptions of a new business, each with one due delivery, all three claimed. */
  async function threeClaimed() {
    const tenant = await h.tenant();
    const now = Date.now();
    const due = await Promise.all(
      [1, 2, 3].map(() => subscriptionWithDue(h.ctx.db, tenant.businessId, "active", null, now - 1000)),
    );
    const ids = new Set(due.map((d) => d.deliveryId));
    const held = (await claimBatch(h.ctx.adapter, limits)).claimed.filter((d) => ids.has(d.id));
    expect(held).toHaveLength(3);
    return { now, due, ids, held };
  }

  it("return each delivery with its event's payload and its webhook, read once and shared by its deliveries", async () => {
    const tenant = await h.tenant();
    const hooks = [];
    for (const endpoint of ["https://one.example.com/hook", "https://two.example.com/hook"]) {
      const created = await tenant.request("POST", "/notification/v1/connect/webhook/subscriptions", {
        endpoint,
        event_names: ["appointment.created"],
        headers: { "x-team": "billing" },
      });
      expect(created.statusCode, created.body).toBe(201);
      hooks.push({ id: (created.json() as { id: string }).id, endpoint });
    }
    // Every column the claim returns set to a value of its own (an active webhook ignores the breaker's).
    const now = Date.now();
    for (const [i, hook] of hooks.entries()) {
      await h.ctx.db
        .updateTable("subscription")
        .set({
          max_in_flight: 3 + i,
          rate_limit: 50 + i,
          timeout_ms: 4000 + i,
          retry_schedule: `[${1000 + i}]`,
          previous_signing_key: `sealed-previous-${i}`,
          previous_key_expires_at: now + 60_000 + i,
          state_reason: `reason ${i}`,
          failure_streak: 2 + i,
          failing_since: now - 5000 - i,
          probe_at: now + 5000 + i,
        })
        .where("id", "=", hook.id)
        .execute();
    }
    for (let i = 0; i < 2; i++)
      expect((await tenant.request("POST", "/dr/v1/business/appointments", booking)).statusCode).toBe(201);
    const everything = (await claimBatch(h.ctx.adapter, limits)).claimed;
    try {
      const mine = new Set(hooks.map((hook) => hook.id));
      const claimed = everything.filter((d) => mine.has(d.subscription_id));
      expect(claimed).toHaveLength(4);
      for (const hook of hooks) {
        const [first, second] = claimed.filter((d) => d.subscription_id === hook.id) as [
          ClaimedDelivery,
          ClaimedDelivery,
        ];
        expect(second.webhook).toBe(first.webhook);
        // Every column as stored (the keys and headers sealed by the master key, opened only by the sender).
        const stored = await h.ctx.db
          .selectFrom("subscription")
          .select([
            "id",
            "endpoint",
            "signing_key",
            "previous_signing_key",
            "previous_key_expires_at",
            "state",
            "state_reason",
            "state_changed_at",
            "failure_streak",
            "failing_since",
            "probe_at",
            "max_in_flight",
            "rate_limit",
            "headers",
            "timeout_ms",
            "retry_schedule",
          ])
          .where("id", "=", hook.id)
          .executeTakeFirstOrThrow();
        expect(first.webhook).toEqual(stored);
        expect(first.webhook).toMatchObject({ endpoint: hook.endpoint, state: "active" });
        expect(first.webhook.headers).toMatch(/\S/);
        expect(first.webhook.headers).not.toContain("billing");
        for (const delivery of [first, second]) {
          const event = await h.ctx.db
            .selectFrom("event")
            .select(["payload", "name"])
            .where("id", "=", delivery.event_id)
            .executeTakeFirstOrThrow();
          expect(delivery.payload).toBe(event.payload);
          expect(delivery).toMatchObject({ event_name: event.name, attempts: 0, retries_from: 0 });
        }
        expect(first.event_id).not.toBe(second.event_id);
      }
      const [a, b] = hooks.map((hook) => claimed.find((d) => d.subscription_id === hook.id)?.webhook);
      expect(a).not.toBe(b);
    } finally {
      // Everything this claim took, other tests' due deliveries included, goes back.
      await releaseLeases(
        h.ctx.adapter,
        everything.map((d) => ({ id: d.id, token: d.lease_token })),
      );
    }
  });

  it("release leases in one call, each only under its own token", async () => {
    const { ids, held } = await threeClaimed();
    const [first, second, third] = held as [ClaimedDelivery, ClaimedDelivery, ClaimedDelivery];
    const released = await releaseLeases(h.ctx.adapter, [
      { id: first.id, token: first.lease_token },
      { id: second.id, token: "not-its-token" },
      { id: third.id, token: third.lease_token },
    ]);
    expect(released).toBe(2);
    const rows = await h.ctx.db
      .selectFrom("delivery")
      .select(["id", "status", "lease_token"])
      .where("id", "in", [...ids])
      .execute();
    const status = new Map(rows.map((row) => [row.id, row.status]));
    expect([status.get(first.id), status.get(second.id), status.get(third.id)]).toEqual([
      "pending",
      "in_flight",
      "pending",
    ]);
    expect(await releaseLeases(h.ctx.adapter, [])).toBe(0);
  });

  it("cancel a lease given back once its subscription was disabled or deleted, as a retry would be", async () => {
    const { now, due, ids, held } = await threeClaimed();
    const [disabled, deleted, live] = due as [(typeof due)[0], (typeof due)[0], (typeof due)[0]];
    // Its breaker opened (410) while these waited in its lane; another was deleted.
    await h.ctx.db.updateTable("subscription").set({ state: "disabled" }).where("id", "=", disabled.id).execute();
    await h.ctx.db.updateTable("subscription").set({ deleted_at: now }).where("id", "=", deleted.id).execute();
    const released = await releaseLeases(
      h.ctx.adapter,
      held.map((d) => ({ id: d.id, token: d.lease_token })),
    );
    expect(released).toBe(3);
    const rows = await h.ctx.db
      .selectFrom("delivery")
      .select(["id", "status", "next_attempt_at", "last_error", "lease_token"])
      .where("id", "in", [...ids])
      .execute();
    const byId = new Map(rows.map((row) => [row.id, row]));
    for (const gone of [disabled, deleted]) {
      expect(byId.get(gone.deliveryId)).toMatchObject({
        status: "cancelled",
        next_attempt_at: null,
        last_error: "subscription deleted or disabled",
        lease_token: null,
      });
    }
    expect(byId.get(live.deliveryId)).toMatchObject({ status: "pending", last_error: null, lease_token: null });
    expect(Number(byId.get(live.deliveryId)?.next_attempt_at)).toBe(now - 1000);
  });

  it("record a late attempt but change nothing once its lease was taken over (fencing)", async () => {
    const tenant = await h.tenant();
    const now = Date.now();
    const a = await subscriptionWithDue(h.ctx.db, tenant.businessId, "active", null, now - 1000);
    const b = await subscriptionWithDue(h.ctx.db, tenant.businessId, "active", null, now - 1000);
    const mine = (claimed: ClaimedDelivery[]) =>
      claimed.filter((d) => d.id === a.deliveryId || d.id === b.deliveryId).sort((x, y) => (x.id < y.id ? -1 : 1));
    const first = mine((await claimBatch(h.ctx.adapter, limits)).claimed);
    expect(first.map((d) => d.id)).toEqual([a.deliveryId, b.deliveryId].sort());
    const [firstA, firstB] = [first.find((d) => d.id === a.deliveryId), first.find((d) => d.id === b.deliveryId)];

    // The first worker went quiet: a's lease expires and a second claim takes it over.
    await h.ctx.db.updateTable("delivery").set({ lease_expires_at: 0 }).where("id", "=", a.deliveryId).execute();
    // Another worker's heartbeat returns the expired lease to pending.
    const other = { id: "wrk_other", host: "test", pid: 1 };
    await beat(h.ctx.adapter, other, { timeoutMs: 10_000, leaseMs: 60_000 });
    const second = mine((await claimBatch(h.ctx.adapter, limits)).claimed);
    expect(second.map((d) => d.id)).toEqual([a.deliveryId]);
    const secondA = second[0] as ClaimedDelivery;
    expect(secondA.lease_token).not.toBe(firstA?.lease_token);

    const complete = async (completions: Completion[]) => {
      const { moved } = await completeBatch(h.ctx.adapter, completions);
      return { fenced: completions.length - moved.size };
    };
    // The first worker's two attempts land together: b's lease holds, a's does not.
    const late = await complete([succeeded(firstA as ClaimedDelivery), succeeded(firstB as ClaimedDelivery)]);
    expect(late.fenced).toBe(1);
    const rows = async () =>
      h.ctx.db
        .selectFrom("delivery")
        .select(["id", "status", "lease_token", "attempts"])
        .where("id", "in", [a.deliveryId, b.deliveryId])
        .orderBy("id")
        .execute();
    const byId = async () => new Map((await rows()).map((row) => [row.id, row]));
    let state = await byId();
    expect(state.get(a.deliveryId)).toMatchObject({
      status: "in_flight",
      lease_token: secondA.lease_token,
      attempts: 0,
    });
    expect(state.get(b.deliveryId)).toMatchObject({ status: "succeeded", lease_token: null, attempts: 1 });
    const attempts = await h.ctx.db
      .selectFrom("attempt")
      .select("delivery_id")
      .where("delivery_id", "in", [a.deliveryId, b.deliveryId])
      .execute();
    expect(attempts).toHaveLength(2);

    expect((await complete([succeeded(secondA)])).fenced).toBe(0);
    state = await byId();
    expect(state.get(a.deliveryId)).toMatchObject({ status: "succeeded", lease_token: null, attempts: 1 });
  });

  it("schedule a retry on the database's clock, whatever the worker's clock says", async () => {
    const tenant = await h.tenant();
    const due = await subscriptionWithDue(h.ctx.db, tenant.businessId, "active", null, Date.now() - 1000);
    const claimed = (await claimBatch(h.ctx.adapter, limits)).claimed.find((d) => d.id === due.deliveryId);
    if (!claimed) throw new Error("the delivery was not claimed");
    // This worker's clock runs an hour fast: it decided "retry in 30 s" at what it thinks is now.
    const workerNow = Date.now() + 3_600_000;
    const retry: Completion = {
      ...succeeded(claimed),
      outcome: { kind: "retry", at: workerNow + 30_000, reason: "HTTP 500" },
      decidedAt: workerNow,
      statusCode: 500,
    };
    const before = await h.ctx.adapter.now(h.ctx.db);
    const { now } = await completeBatch(h.ctx.adapter, [retry]);
    const row = await h.ctx.db
      .selectFrom("delivery")
      .select(["status", "next_attempt_at"])
      .where("id", "=", due.deliveryId)
      .executeTakeFirstOrThrow();
    expect(row.status).toBe("pending");
    expect(now).toBeGreaterThanOrEqual(before);
    expect(Number(row.next_attempt_at)).toBe(now + 30_000);
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
