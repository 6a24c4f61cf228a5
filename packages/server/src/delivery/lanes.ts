/**
 * Per subscription: the attempts being sent now, capped, and the deliveries
 * leased ahead that wait for a slot.
 *
 * One worker sends a subscription's deliveries at a time (SQLite has one
 * dispatcher; on PostgreSQL the subscription's `sender`, store/queue/claim.ts),
 * so the cap on concurrent requests to an endpoint holds here, in memory. A
 * claim may lease more than the free slots; the extra wait here and go the
 * moment a response ends, with no claim in between.
 */
import type { ClaimedDelivery } from "../store/queue/claim.js";

interface Lane {
  sending: number;
  readonly ready: ClaimedDelivery[];
}

export class Lanes {
  readonly #cap: number;
  readonly #lanes = new Map<string, Lane>();
  #ready = 0;

  /** `cap`: concurrent attempts per subscription. */
  constructor(cap: number) {
    this.#cap = cap;
  }

  /** Deliveries leased and waiting for a slot, over every subscription. */
  get ready(): number {
    return this.#ready;
  }

  /** A claimed delivery: true when it may be sent now (its slot is taken), false when it waits. */
  admit(delivery: ClaimedDelivery): boolean {
    const lane = this.#lane(delivery.subscription_id);
    if (lane.sending < this.#cap && lane.ready.length === 0) {
      lane.sending++;
      return true;
    }
    lane.ready.push(delivery);
    this.#ready++;
    return false;
  }

  /** An attempt ended: its slot is free. */
  finished(subscriptionId: string): void {
    const lane = this.#lanes.get(subscriptionId);
    if (!lane) return;
    lane.sending--;
    if (lane.sending === 0 && lane.ready.length === 0) this.#lanes.delete(subscriptionId);
  }

  /** The next waiting delivery of a subscription, taking a free slot for it; undefined when none waits or no slot is free. */
  next(subscriptionId: string): ClaimedDelivery | undefined {
    const lane = this.#lanes.get(subscriptionId);
    if (!lane || lane.sending >= this.#cap) return undefined;
    const next = lane.ready.shift();
    if (next) {
      this.#ready--;
      lane.sending++;
    }
    return next;
  }

  /** Deliveries of one subscription still waiting. */
  waiting(subscriptionId: string): number {
    return this.#lanes.get(subscriptionId)?.ready.length ?? 0;
  }

  /** Takes every waiting delivery of one subscription (its breaker opened: they go back to the queue unsent). */
  takeWaiting(subscriptionId: string): ClaimedDelivery[] {
    const lane = this.#lanes.get(subscriptionId);
    if (!lane || lane.ready.length === 0) return [];
    const taken = lane.ready.splice(0);
    this.#ready -= taken.length;
    if (lane.sending === 0) this.#lanes.delete(subscriptionId);
    return taken;
  }

  #lane(subscriptionId: string): Lane {
    let lane = this.#lanes.get(subscriptionId);
    if (!lane) {
      lane = { sending: 0, ready: [] };
      this.#lanes.set(subscriptionId, lane);
    }
    return lane;
  }
}
