/**
 * A dispatcher's stop: attempts in flight finish within the grace period and are
 * recorded; past it they are cut off, spend no attempt, and their deliveries go
 * back to pending. Either way it holds no lease when stop() returns.
 */
import { afterEach, describe, expect, it } from "vitest";
import { dialects } from "./support/databases.js";
import { booking } from "./support/fixtures.js";
import { type Harness, LOCAL_DELIVERY_ENV, startHarness } from "./support/harness.js";
import { type Receiver, startReceiver } from "./support/receiver.js";

const WEBHOOKS = "/notification/v1/connect/webhook/subscriptions";
const APPOINTMENTS = "/dr/v1/business/appointments";

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

describe.each(dialects())("stopping the dispatcher on %s", (dialect) => {
  /** A dispatcher whose one delivery is at a receiver that answers after `delayMs`. */
  async function deliveryInFlight(delayMs: number): Promise<{ h: Harness; receiver: Receiver; deliveryId: string }> {
    const h = await startHarness(dialect, LOCAL_DELIVERY_ENV, { dispatcher: true });
    cleanups.push(() => h.close());
    const receiver = await startReceiver();
    cleanups.push(() => receiver.close());
    receiver.answer = () => ({ status: 200, delayMs });
    const tenant = await h.tenant();
    const created = await tenant.request("POST", WEBHOOKS, {
      endpoint: receiver.url,
      event_names: ["appointment.created"],
    });
    expect(created.statusCode, created.body).toBe(201);
    await tenant.request("POST", APPOINTMENTS, booking);
    await receiver.waitFor(1);
    const list = (await tenant.request("GET", `${WEBHOOKS}/${created.json().id}/deliveries`)).json();
    return { h, receiver, deliveryId: list.data[0].id };
  }

  const rowOf = (h: Harness, id: string) =>
    h.ctx.db
      .selectFrom("delivery")
      .select(["status", "attempts", "lease_token"])
      .where("id", "=", id)
      .executeTakeFirstOrThrow();
  const attemptsOf = (h: Harness, id: string) =>
    h.ctx.db.selectFrom("attempt").select("id").where("delivery_id", "=", id).execute();

  it("lets an attempt in flight finish within the grace period, and records it", async () => {
    const { h, deliveryId } = await deliveryInFlight(300);
    await h.dispatcher?.stop(5_000);
    expect(await rowOf(h, deliveryId)).toEqual({ status: "succeeded", attempts: 1, lease_token: null });
    expect(await attemptsOf(h, deliveryId)).toHaveLength(1);
  });

  it("cuts off an attempt still in flight after the grace period: no attempt spent, back to pending", async () => {
    // The receiver holds the request for 10 s, far past the grace period.
    const { h, deliveryId } = await deliveryInFlight(10_000);
    const started = Date.now();
    await h.dispatcher?.stop(200);
    // The request was cut off, not waited for: its sender would otherwise wait for the 1 s request timeout.
    expect(Date.now() - started).toBeLessThan(900);
    expect(await rowOf(h, deliveryId)).toEqual({ status: "pending", attempts: 0, lease_token: null });
    // Past the 1 s request timeout an uncut attempt would have ended and written its attempt row.
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    expect(await attemptsOf(h, deliveryId)).toHaveLength(0);
    expect(await rowOf(h, deliveryId)).toEqual({ status: "pending", attempts: 0, lease_token: null });
  });
});
