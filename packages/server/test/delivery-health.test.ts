import { describe, expect, it } from "vitest";
import { dialects } from "./support/databases.js";
import { booking, until } from "./support/fixtures.js";
import { deliveringHarness, LOCAL_DELIVERY_ENV, startHarness, type Tenant } from "./support/harness.js";
import { openCounter, type Receiver, startReceiver } from "./support/receiver.js";

const WEBHOOKS = "/notification/v1/connect/webhook/subscriptions";
const APPOINTMENTS = "/dr/v1/business/appointments";

describe.each(dialects())("subscription health and caps on %s", (dialect) => {
  const run = deliveringHarness(dialect, {
    CAREHOOKS_RETRY_SCHEDULE: "150ms,300ms,600ms,600ms,600ms,600ms,600ms,600ms",
    CAREHOOKS_BREAKER_THRESHOLD: "3",
    CAREHOOKS_MAX_IN_FLIGHT_PER_ENDPOINT: "3",
    CAREHOOKS_DISABLE_AFTER: "1h",
  });

  async function setup(): Promise<{ tenant: Tenant; receiver: Receiver; webhookId: string }> {
    const receiver = await run.receiver();
    const tenant = await run.h.tenant();
    const created = await tenant.request("POST", WEBHOOKS, {
      endpoint: receiver.url,
      event_names: ["appointment.created"],
    });
    return { tenant, receiver, webhookId: created.json().id };
  }
  const webhook = async (tenant: Tenant, id: string) => (await tenant.request("GET", `${WEBHOOKS}/${id}`)).json().data;

  it("never has more than MAX_IN_FLIGHT_PER_ENDPOINT requests open at one endpoint", async () => {
    const { tenant, receiver } = await setup();
    const { peak } = openCounter(receiver, () => ({ status: 200, delayMs: 150 }));
    await Promise.all(Array.from({ length: 12 }, () => tenant.request("POST", APPOINTMENTS, booking)));
    await receiver.waitFor(12, 20_000);
    expect(peak()).toBeLessThanOrEqual(3);
    expect(peak()).toBeGreaterThanOrEqual(2);
  });

  it("keeps a hot endpoint from starving another", async () => {
    const hot = await setup();
    const quiet = await setup();
    hot.receiver.answer = () => ({ status: 200, delayMs: 100 });
    await Promise.all(Array.from({ length: 30 }, () => hot.tenant.request("POST", APPOINTMENTS, booking)));
    await quiet.tenant.request("POST", APPOINTMENTS, booking);
    await quiet.receiver.waitFor(1, 5000);
    // The quiet endpoint was served while the hot one still had most of its backlog.
    expect(hot.receiver.received.length).toBeLessThan(30);
    await hot.receiver.waitFor(30, 20_000);
  });

  it("degrades after the threshold, probes one at a time without spending held-back attempts, and recovers", async () => {
    const { tenant, receiver, webhookId } = await setup();
    let healthy = false;
    let open = 0;
    let peakWhileDegraded = 0;
    receiver.answer = () => {
      open += 1;
      setTimeout(() => (open -= 1), 20);
      return healthy ? { status: 200 } : { status: 500, delayMs: 20 };
    };
    await tenant.request("POST", APPOINTMENTS, booking);
    await until(async () => (await webhook(tenant, webhookId)).state === "degraded", 15_000, "degraded");
    const degraded = await webhook(tenant, webhookId);
    expect(degraded.state_reason).toMatch(/consecutive failures/);

    for (let i = 0; i < 5; i++) await tenant.request("POST", APPOINTMENTS, booking);
    const before = receiver.received.length;
    const sample = setInterval(() => (peakWhileDegraded = Math.max(peakWhileDegraded, open)), 5);
    await new Promise((resolve) => setTimeout(resolve, 800));
    clearInterval(sample);
    expect(peakWhileDegraded).toBeLessThanOrEqual(1);
    // Only probes went out, one at a time; every delivery not probed was held back and spent nothing.
    const probes = receiver.received.length - before;
    const heldBack = await run.h.ctx.db
      .selectFrom("delivery")
      .select(["attempts"])
      .where("subscription_id", "=", webhookId)
      .where("status", "=", "pending")
      .where("attempts", "=", 0)
      .execute();
    expect(heldBack.length).toBeGreaterThanOrEqual(5 - probes);
    expect(heldBack.length).toBeGreaterThan(0);

    healthy = true;
    await until(async () => (await webhook(tenant, webhookId)).state === "active", 15_000, "active again");
    const recovered = await webhook(tenant, webhookId);
    expect(recovered.state_reason).toBeNull();
    await until(
      async () => {
        const rows = await run.h.ctx.db
          .selectFrom("delivery")
          .select("status")
          .where("subscription_id", "=", webhookId)
          .execute();
        return rows.every((row) => row.status === "succeeded") ? rows : undefined;
      },
      15_000,
      "backlog to drain",
    );
    const row = await run.h.ctx.db
      .selectFrom("subscription")
      .selectAll()
      .where("id", "=", webhookId)
      .executeTakeFirstOrThrow();
    expect(row.failure_streak).toBe(0);
  });

  it("re-enabling by hand resets the failure streak and resumes deliveries", async () => {
    const { tenant, receiver, webhookId } = await setup();
    receiver.answer = () => ({ status: 500 });
    await tenant.request("POST", APPOINTMENTS, booking);
    await until(async () => (await webhook(tenant, webhookId)).state === "degraded");
    await tenant.request("POST", `${WEBHOOKS}/${webhookId}/disable`);
    expect(
      (
        await run.h.ctx.db.selectFrom("delivery").select("status").where("subscription_id", "=", webhookId).execute()
      ).map((r) => r.status),
    ).not.toContain("pending");
    receiver.answer = () => ({ status: 200 });
    const enabled = (await tenant.request("POST", `${WEBHOOKS}/${webhookId}/enable`)).json().data;
    expect(enabled).toMatchObject({ state: "active", state_reason: null });
    const row = await run.h.ctx.db
      .selectFrom("subscription")
      .selectAll()
      .where("id", "=", webhookId)
      .executeTakeFirstOrThrow();
    expect(row.failure_streak).toBe(0);
    const count = receiver.received.length;
    await tenant.request("POST", APPOINTMENTS, booking);
    await receiver.waitFor(count + 1);
  });
});

describe.each(dialects())("auto-disable on %s", (dialect) => {
  it("disables a webhook that has failed for CAREHOOKS_DISABLE_AFTER and cancels its queue", async () => {
    const h = await startHarness(
      dialect,
      {
        ...LOCAL_DELIVERY_ENV,
        CAREHOOKS_BREAKER_THRESHOLD: "100",
        CAREHOOKS_DISABLE_AFTER: "400ms",
        CAREHOOKS_RETRY_SCHEDULE: "100ms,100ms,100ms,100ms,100ms,100ms,100ms,100ms,100ms,100ms",
      },
      { dispatcher: true },
    );
    const receiver = await startReceiver();
    try {
      receiver.answer = () => ({ status: 500 });
      const tenant = await h.tenant();
      const id = (
        await tenant.request("POST", WEBHOOKS, { endpoint: receiver.url, event_names: ["appointment.created"] })
      ).json().id;
      await tenant.request("POST", APPOINTMENTS, booking);
      await tenant.request("POST", APPOINTMENTS, booking);
      const disabled = await until(async () => {
        const w = (await tenant.request("GET", `${WEBHOOKS}/${id}`)).json().data;
        return w.state === "disabled" ? w : undefined;
      });
      expect(disabled.state_reason).toMatch(/failing since/);
      const statuses = (
        await h.ctx.db.selectFrom("delivery").select("status").where("subscription_id", "=", id).execute()
      ).map((r) => r.status);
      await until(async () => {
        const now = (
          await h.ctx.db.selectFrom("delivery").select("status").where("subscription_id", "=", id).execute()
        ).map((r) => r.status);
        return now.every((s) => s === "cancelled" || s === "failed") ? now : undefined;
      });
      expect(statuses.length).toBe(2);
    } finally {
      await h.close();
      await receiver.close();
    }
  });
});
