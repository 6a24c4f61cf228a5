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
const SPACING_MS = 400;

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

  /** How long after its create the second of two events arrives, the first having been delivered 100 ms before. */
  async function secondEventDelay(spacingMs: number): Promise<number> {
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
    // The first delivery's completion (which claims too) is recorded by now.
    await new Promise((resolve) => setTimeout(resolve, 100));
    const sent = Date.now();
    await tenant.request("POST", APPOINTMENTS, booking);
    const [, second] = await receiver.waitFor(2);
    return (second?.at ?? Number.NaN) - sent;
  }

  it("claims at once when the spacing is 0 (SQLite's)", async () => {
    expect(await secondEventDelay(0)).toBeLessThan(200);
  });

  it("holds a wake-up back until the spacing after the last claim has passed", async () => {
    const delay = await secondEventDelay(SPACING_MS);
    // The last claim was about 100 ms before the create.
    expect(delay).toBeGreaterThanOrEqual(SPACING_MS - 150);
    expect(delay).toBeLessThan(SPACING_MS + 1000);
  });
});
