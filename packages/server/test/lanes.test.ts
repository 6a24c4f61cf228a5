import { describe, expect, it } from "vitest";
import { Lanes } from "../src/delivery/lanes.js";
import type { ClaimedDelivery } from "../src/store/queue/claim.js";

let n = 0;
const delivery = (subscription: string): ClaimedDelivery =>
  ({ id: `dlv_${++n}`, subscription_id: subscription, lease_token: `t${n}` }) as ClaimedDelivery;

describe("lanes (deliveries leased ahead of an endpoint's cap)", () => {
  it("sends up to the cap and keeps the rest waiting, in claim order", () => {
    const lanes = new Lanes(2);
    const claimed = [delivery("a"), delivery("a"), delivery("a"), delivery("a"), delivery("b")];
    expect(claimed.map((d) => lanes.admit(d))).toEqual([true, true, false, false, true]);
    expect(lanes.ready).toBe(2);
    expect(lanes.waiting("a")).toBe(2);
    // No slot is free until one ends.
    expect(lanes.next("a")).toBeUndefined();
    lanes.finished("a");
    expect(lanes.next("a")).toBe(claimed[2]);
    expect(lanes.next("a")).toBeUndefined();
    lanes.finished("a");
    expect(lanes.next("a")).toBe(claimed[3]);
    expect(lanes.ready).toBe(0);
  });

  it("never admits past a waiting delivery: what was leased first is sent first", () => {
    const lanes = new Lanes(1);
    const [first, second, third] = [delivery("a"), delivery("a"), delivery("a")];
    expect(lanes.admit(first)).toBe(true);
    expect(lanes.admit(second)).toBe(false);
    lanes.finished("a");
    // A later claim's delivery queues behind the one already waiting.
    expect(lanes.admit(third)).toBe(false);
    expect(lanes.next("a")).toBe(second);
  });

  it("gives back a subscription's waiting deliveries and frees their count", () => {
    const lanes = new Lanes(1);
    const claimed = [delivery("a"), delivery("a"), delivery("a")];
    for (const d of claimed) lanes.admit(d);
    expect(lanes.takeWaiting("a")).toEqual(claimed.slice(1));
    expect(lanes.ready).toBe(0);
    expect(lanes.waiting("a")).toBe(0);
    lanes.finished("a");
    // An empty lane is forgotten: the next delivery of that subscription is sent at once.
    expect(lanes.admit(delivery("a"))).toBe(true);
  });
});
