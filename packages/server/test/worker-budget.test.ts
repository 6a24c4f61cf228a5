/**
 * What a worker leases ahead for busy endpoints (delivery/lanes.ts) counts
 * against its MAX_IN_FLIGHT with the requests it has open; the dispatcher asks
 * for less ahead as more endpoints have lanes, so one slow endpoint's lane never
 * keeps another below its cap.
 */
import { describe, expect, it } from "vitest";
import { dialects } from "./support/databases.js";
import { booking } from "./support/fixtures.js";
import { deliveringHarness, type Tenant } from "./support/harness.js";
import { openCounter, type Receiver } from "./support/receiver.js";

const WEBHOOKS = "/notification/v1/connect/webhook/subscriptions";
const APPOINTMENTS = "/dr/v1/business/appointments";
const SLOW_MS = 600;
const CAP = 3;

describe.each(dialects())("a worker's budget on %s", (dialect) => {
  const run = deliveringHarness(dialect, {
    CAREHOOKS_REQUEST_TIMEOUT: "5s",
    CAREHOOKS_LEASE: "10s",
    // Less than the two slow endpoints' leases ahead (LEASE_AHEAD times their cap each).
    CAREHOOKS_MAX_IN_FLIGHT: "40",
    CAREHOOKS_MAX_IN_FLIGHT_PER_ENDPOINT: String(CAP),
  });

  /** A webhook whose receiver answers after `delayMs`, and the most requests it had open at once. */
  async function endpoint(delayMs = 0): Promise<{ tenant: Tenant; receiver: Receiver; peak: () => number }> {
    const receiver = await run.receiver();
    const { peak } = openCounter(receiver, () => ({ status: 200, delayMs }));
    const tenant = await run.h.tenant();
    await tenant.request("POST", WEBHOOKS, { endpoint: receiver.url, event_names: ["appointment.created"] });
    return { tenant, receiver, peak };
  }

  it("lets every busy endpoint reach its cap when their leases ahead could fill the budget", async () => {
    const slow = [await endpoint(SLOW_MS), await endpoint(SLOW_MS)];
    const quiet = await endpoint();
    for (const { tenant } of slow)
      await Promise.all(Array.from({ length: 60 }, () => tenant.request("POST", APPOINTMENTS, booking)));
    // A few rounds of the slow endpoints' answers: each has had its cap open.
    await new Promise((resolve) => setTimeout(resolve, 4 * SLOW_MS));
    expect(slow.map(({ peak }) => peak())).toEqual([CAP, CAP]);
    await quiet.tenant.request("POST", APPOINTMENTS, booking);
    await quiet.receiver.waitFor(1, 20_000);
    // Served while the slow endpoints had most of their backlog left.
    expect(slow.reduce((sum, { receiver }) => sum + receiver.received.length, 0)).toBeLessThan(100);
  });
});
