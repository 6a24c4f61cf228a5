/**
 * Per subscription: the attempts being sent now, at most its cap, the
 * deliveries leased ahead that wait for a slot, and its rate limit.
 *
 * One worker sends a subscription's deliveries at a time (SQLite has one
 * dispatcher; on PostgreSQL the subscription's `sender`, store/queue/claim.ts),
 * so the cap on concurrent requests to an endpoint and its rate limit hold
 * here, in memory. A claim may lease more than the free slots (LEASE_AHEAD);
 * the extra wait here and go the moment a response ends, with no claim in
 * between.
 */
import type { ClaimedDelivery } from "../store/queue/claim.js";

interface Lane {
  cap: number;
  sending: number;
  readonly ready: ClaimedDelivery[];
}

/** A token bucket: `rate` tokens a second, holding at most one second's worth. */
interface Bucket {
  rate: number;
  tokens: number;
  at: number;
}

/** A token counts as whole within this much: refills add up in floating point (0.998 + 0.002 < 1). */
const WHOLE = 1 - 1e-9;

/** Buckets kept for subscriptions with nothing in their lane; past this, full ones are dropped. */
const IDLE_BUCKETS = 1_000;

export class Lanes {
  readonly #serverCap: number;
  #leaseAhead: number;
  readonly #lanes = new Map<string, Lane>();
  /** Outlive their lanes: a lane emptied and refilled a moment later must not start with a full bucket. */
  readonly #buckets = new Map<string, Bucket>();
  #ready = 0;

  /**
   * `serverCap`: CAREHOOKS_MAX_IN_FLIGHT_PER_ENDPOINT, the cap of a subscription that sets none lower.
   * `leaseAhead`: how many times its cap a claim leases (store/queue/claim.ts, LEASE_AHEAD; the
   * dispatcher lowers it as more lanes share its budget).
   */
  constructor(serverCap: number, leaseAhead: number) {
    this.#serverCap = serverCap;
    this.#leaseAhead = leaseAhead;
  }

  /** Deliveries leased and waiting, over every subscription. */
  get ready(): number {
    return this.#ready;
  }

  /** Subscriptions with deliveries being sent or waiting here. */
  get active(): number {
    return this.#lanes.size;
  }

  /** How many times its cap the claims now lease (the dispatcher lowers it as more lanes share its budget). */
  set leaseAhead(times: number) {
    this.#leaseAhead = times;
  }

  /** A claimed delivery joins its subscription's lane, behind those already waiting. */
  add(delivery: ClaimedDelivery): void {
    const id = delivery.subscription_id;
    let lane = this.#lanes.get(id);
    if (!lane) {
      lane = { cap: 0, sending: 0, ready: [] };
      this.#lanes.set(id, lane);
    }
    // The claim read the subscription's settings as they are now.
    lane.cap = Math.min(delivery.webhook.max_in_flight ?? this.#serverCap, this.#serverCap);
    this.#setRate(id, delivery.webhook.rate_limit);
    lane.ready.push(delivery);
    this.#ready++;
  }

  /**
   * The next waiting delivery of a subscription, taking a slot (and a token,
   * when it is rate limited) for it; undefined when none waits or it must wait.
   */
  next(subscriptionId: string, now: number): ClaimedDelivery | undefined {
    const lane = this.#lanes.get(subscriptionId);
    if (!lane || lane.sending >= lane.cap || lane.ready.length === 0) return undefined;
    const bucket = this.#buckets.get(subscriptionId);
    if (bucket) {
      refill(bucket, now);
      if (bucket.tokens < WHOLE) return undefined;
      bucket.tokens = Math.max(0, bucket.tokens - 1);
    }
    this.#ready--;
    lane.sending++;
    return lane.ready.shift();
  }

  /** Milliseconds until a rate-limited subscription with deliveries waiting may send again; 0 when it need not wait for a token. */
  tokenIn(subscriptionId: string, now: number): number {
    const bucket = this.#buckets.get(subscriptionId);
    if (!bucket || this.waiting(subscriptionId) === 0) return 0;
    refill(bucket, now);
    return bucket.tokens >= WHOLE ? 0 : Math.ceil(((1 - bucket.tokens) * 1000) / bucket.rate);
  }

  /** An attempt ended: its slot is free. */
  finished(subscriptionId: string): void {
    const lane = this.#lanes.get(subscriptionId);
    if (!lane) return;
    lane.sending--;
    this.#forgetIfIdle(subscriptionId, lane);
  }

  /** Deliveries of one subscription still waiting. */
  waiting(subscriptionId: string): number {
    return this.#lanes.get(subscriptionId)?.ready.length ?? 0;
  }

  /** True when a subscription has used up half of what it leases ahead of its cap: time to claim more. */
  low(subscriptionId: string): boolean {
    const lane = this.#lanes.get(subscriptionId);
    return !lane || lane.ready.length <= (lane.cap * (this.#leaseAhead - 1)) / 2;
  }

  /** Takes every waiting delivery of one subscription (a failure or an open breaker: they go back unsent). */
  takeWaiting(subscriptionId: string): ClaimedDelivery[] {
    const lane = this.#lanes.get(subscriptionId);
    if (!lane || lane.ready.length === 0) return [];
    const taken = lane.ready.splice(0);
    this.#ready -= taken.length;
    this.#forgetIfIdle(subscriptionId, lane);
    return taken;
  }

  #setRate(subscriptionId: string, rate: number | null): void {
    const bucket = this.#buckets.get(subscriptionId);
    if (rate === null) this.#buckets.delete(subscriptionId);
    else if (!bucket) this.#buckets.set(subscriptionId, { rate, tokens: rate, at: performance.now() });
    else bucket.rate = rate;
  }

  #forgetIfIdle(subscriptionId: string, lane: Lane): void {
    if (lane.sending > 0 || lane.ready.length > 0) return;
    this.#lanes.delete(subscriptionId);
    if (this.#buckets.size <= IDLE_BUCKETS) return;
    // Many rate-limited subscriptions went idle: a bucket that has filled up again holds nothing back.
    const now = performance.now();
    for (const [id, bucket] of this.#buckets) {
      if (this.#lanes.has(id)) continue;
      refill(bucket, now);
      if (bucket.tokens >= bucket.rate) this.#buckets.delete(id);
    }
  }
}

function refill(bucket: Bucket, now: number): void {
  bucket.tokens = Math.min(bucket.rate, bucket.tokens + ((now - bucket.at) * bucket.rate) / 1000);
  bucket.at = now;
}
