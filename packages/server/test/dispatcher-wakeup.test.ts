/**
 * Wake-ups and the dialect's spacing between claims: where every worker
 * wakes on every commit (PostgreSQL), a wake-up soon after a claim waits
 * out the spacing instead of starting another claim at once.
 */
import { afterEach, describe, expect, it } from "vitest";
import { createDeliveryEngine, type DeliveryEngine } from "../src/delivery/engine.js";
import { dialects } from "./support/databases.js";
import { booking } from "./support/fixtures.js";
import { type Harness, LOCAL_DELIVERY_ENV, startHarness } from "./support/harness.js";
import { type Receiver, startReceiver } from "./support/receiver.js";

const WEBHOOKS = "/notification/v1/connect/webhook/subscriptions";
const APPOINTMENTS = "/dr/v1/business/appointments";
const SPACING_MS = 1500;

describe.each(dialects())("wake-ups on %s", (dialect) => {
  let h: Harness | undefined;
  let engine: DeliveryEngine | undefined;
  let receiver: Receiver | undefined;
  afterEach(async () => {
    await engine?.dispatcher.stop(1000);
    await engine?.sender.close();
    await h?.close();
    await receiver?.close();
  });

  /**
   * Two events, the second created 100 ms after the first arrived: how long after its create the
   * second arrives, and how long after the first. The claim that sent the first began shortly before
   * it arrived; a wake-up held back since then (PostgreSQL wakes an `all` process twice per commit,
   * in-process and by NOTIFY) fires a spacing after it, and the second's wake-up joins it.
   */
  async function secondEvent(spacingMs: number): Promise<{ afterCreate: number; afterFirst: number }> {
    // Only wake-ups can start a claim here: the poll is far off.
    h = await startHarness(dialect, { ...LOCAL_DELIVERY_ENV, CAREHOOKS_POLL_INTERVAL: "60s" });
    engine = createDeliveryEngine({ ...h.ctx, adapter: { ...h.ctx.adapter, wakeupSpacingMs: spacingMs } }, h.app.log);
    receiver = await startReceiver();
    const tenant = await h.tenant();
    const created = await tenant.request("POST", WEBHOOKS, {
      endpoint: receiver.url,
      event_names: ["appointment.created"],
    });
    expect(created.statusCode, created.body).toBe(201);
    engine.dispatcher.start();
    // Past the spacing after the start's own claim.
    await new Promise((resolve) => setTimeout(resolve, SPACING_MS + 100));
    await tenant.request("POST", APPOINTMENTS, booking);
    await receiver.waitFor(1);
    await new Promise((resolve) => setTimeout(resolve, 100));
    const sent = Date.now();
    await tenant.request("POST", APPOINTMENTS, booking);
    const [first, second] = await receiver.waitFor(2);
    const at = second?.at ?? Number.NaN;
    return { afterCreate: at - sent, afterFirst: at - (first?.at ?? Number.NaN) };
  }

  it("claims at once when the spacing is 0 (SQLite's)", async () => {
    expect((await secondEvent(0)).afterCreate).toBeLessThan(SPACING_MS / 2);
  });

  it("holds a wake-up back until the spacing after the last claim has passed", async () => {
    const { afterCreate, afterFirst } = await secondEvent(SPACING_MS);
    // Less the first's claim, its transaction and its send: well under 500 ms even on a loaded machine.
    expect(afterFirst).toBeGreaterThanOrEqual(SPACING_MS - 500);
    expect(afterCreate).toBeLessThan(SPACING_MS + 2000);
  });
});
