import { describe, expect, it } from "vitest";
import { Lanes } from "../src/delivery/lanes.js";
import { type ClaimedDelivery, LEASE_AHEAD } from "../src/store/queue/claim.js";

/** How many times its cap a claim leases (SQLite's). */

let n = 0;
const delivery = (subscription: string, settings: { cap?: number; rate?: number } = {}): ClaimedDelivery =>
  ({
    id: `dlv_${++n}`,
    subscription_id: subscription,
    lease_token: `t${n}`,
    webhook: { id: subscription, max_in_flight: settings.cap ?? null, rate_limit: settings.rate ?? null },
  }) as ClaimedDelivery;

/** Takes everything a lane lets go now. */
function drain(lanes: Lanes, subscription: string, now = 0): ClaimedDelivery[] {
  const sent: ClaimedDelivery[] = [];
  for (let next = lanes.next(subscription, now); next; next = lanes.next(subscription, now)) sent.push(next);
  return sent;
}

describe("lanes (deliveries leased ahead of an endpoint's cap)", () => {
  it("sends up to the cap and keeps the rest waiting, in claim order", () => {
    const lanes = new Lanes(2, LEASE_AHEAD);
    const claimed = [delivery("a"), delivery("a"), delivery("a"), delivery("a"), delivery("b")];
    for (const d of claimed) lanes.add(d);
    expect(drain(lanes, "a")).toEqual(claimed.slice(0, 2));
    expect(drain(lanes, "b")).toEqual([claimed[4]]);
    expect(lanes.ready).toBe(2);
    // No slot is free until one ends.
    expect(lanes.next("a", 0)).toBeUndefined();
    lanes.finished("a");
    expect(drain(lanes, "a")).toEqual([claimed[2]]);
    lanes.finished("a");
    expect(drain(lanes, "a")).toEqual([claimed[3]]);
    expect(lanes.ready).toBe(0);
  });

  it("keeps a webhook's own cap, never above the server's", () => {
    const lanes = new Lanes(3, LEASE_AHEAD);
    for (let i = 0; i < 5; i++) lanes.add(delivery("low", { cap: 1 }));
    // What a claim leases at most: LEASE_AHEAD times the cap.
    for (let i = 0; i < LEASE_AHEAD * 3; i++) lanes.add(delivery("high", { cap: 50 }));
    expect(drain(lanes, "low")).toHaveLength(1);
    expect(drain(lanes, "high")).toHaveLength(3);
    // Claim more once half of what was leased beyond the cap is gone: "high" waits until
    // at most (LEASE_AHEAD - 1) × 3 / 2 are left waiting.
    const threshold = Math.floor(((LEASE_AHEAD - 1) * 3) / 2);
    for (let waiting = LEASE_AHEAD * 3 - 3; waiting > threshold; waiting--) {
      expect(lanes.low("high")).toBe(false);
      lanes.finished("high");
      drain(lanes, "high");
    }
    expect(lanes.low("high")).toBe(true);
  });

  it("lets a rate-limited webhook send one second's worth at once, then one per token", () => {
    const lanes = new Lanes(10, LEASE_AHEAD);
    for (let i = 0; i < 6; i++) lanes.add(delivery("r", { rate: 2 }));
    const start = performance.now();
    expect(drain(lanes, "r", start)).toHaveLength(2);
    expect(lanes.tokenIn("r", start)).toBe(500);
    expect(drain(lanes, "r", start + 499)).toHaveLength(0);
    expect(drain(lanes, "r", start + 500)).toHaveLength(1);
    // Emptied and refilled at once: the bucket is the same, not a fresh one.
    for (let i = 0; i < 3; i++) lanes.finished("r");
    lanes.takeWaiting("r");
    lanes.add(delivery("r", { rate: 2 }));
    expect(drain(lanes, "r", start + 600)).toHaveLength(0);
    expect(drain(lanes, "r", start + 1000)).toHaveLength(1);
  });

  it("asked at the instant a token was refused, says how long until one: never 0 a hair short of a token", () => {
    const lanes = new Lanes(10, LEASE_AHEAD);
    for (let i = 0; i < 6; i++) lanes.add(delivery("s", { rate: 5 }));
    const start = performance.now();
    expect(drain(lanes, "s", start)).toHaveLength(5);
    // The sixth waits for a token; a timer for it can fire a fraction of a millisecond early.
    const early = start + 199.9;
    expect(lanes.next("s", early)).toBeUndefined();
    expect(lanes.tokenIn("s", early)).toBeGreaterThan(0);
    // A moment later the token is whole: what a caller reading the clock twice saw, and stopped pumping on.
    expect(lanes.tokenIn("s", start + 200.1)).toBe(0);
    expect(lanes.next("s", start + 200.1)).toBeDefined();
  });

  it("gives back a subscription's waiting deliveries and frees their count", () => {
    const lanes = new Lanes(1, LEASE_AHEAD);
    const claimed = [delivery("a"), delivery("a"), delivery("a")];
    for (const d of claimed) lanes.add(d);
    drain(lanes, "a");
    expect(lanes.takeWaiting("a")).toEqual(claimed.slice(1));
    expect(lanes.ready).toBe(0);
    expect(lanes.waiting("a")).toBe(0);
    lanes.finished("a");
    const later = delivery("a");
    lanes.add(later);
    expect(drain(lanes, "a")).toEqual([later]);
  });
});
