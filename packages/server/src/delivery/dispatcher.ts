/**
 * The dispatcher (the worker role): claims due deliveries under a lease,
 * signs and sends each, and records the outcome.
 *
 * It drains while claims come back full, then sleeps until the earliest of a
 * wake-up signal (a commit created deliveries), the next due time, a free
 * slot, or the poll interval. On stop it claims nothing more, lets in-flight
 * attempts finish within the grace period, and returns whatever it still
 * holds to pending.
 */
import type { FastifyBaseLogger } from "fastify";
import type { Config } from "../config/load.js";
import type { BreakerSettings } from "../domain/breaker.js";
import { outcomeOf } from "../domain/delivery-outcome.js";
import { newId } from "../domain/ids.js";
import type { KeyBox } from "../domain/key-box.js";
import { signatureHeaders } from "../domain/signing.js";
import type { Metrics } from "../ops/metrics.js";
import {
  type ClaimedDelivery,
  type ClaimLimits,
  claimDeliveries,
  claimWithin,
  nextDueAt,
  releaseLeases,
} from "../store/claim-deliveries.js";
import { type Completion, completeWithin } from "../store/complete-deliveries.js";
import type { DialectAdapter } from "../store/dialect/adapter.js";
import { version } from "../version.js";
import type { Sender, SendResult } from "./sender.js";
import type { Wakeup } from "./wakeup.js";

const CLAIM_BATCH = 100;
const ERROR_BACKOFF_MS = 500;
/** How long a freed slot waits for others before the dispatcher claims again. */
const REFILL_COALESCE_MS = 4;
/** Expired leases are looked for at most this often: a lease lasts far longer. */
const SWEEP_EVERY_MS = 1000;

export interface DispatcherDeps {
  readonly adapter: DialectAdapter;
  readonly config: Config;
  readonly keyBox: KeyBox;
  readonly sender: Sender;
  readonly wakeup: Wakeup;
  readonly log: FastifyBaseLogger;
  readonly metrics?: Metrics;
  readonly random?: () => number;
}

/** The keys that sign an attempt now: the current one, then the previous one during its overlap. */
export function signingKeys(delivery: ClaimedDelivery, keyBox: KeyBox, now: number): string[] {
  const keys: string[] = [];
  if (delivery.signing_key) keys.push(keyBox.open(delivery.signing_key));
  if (delivery.previous_signing_key && (delivery.previous_key_expires_at ?? 0) > now) {
    keys.push(keyBox.open(delivery.previous_signing_key));
  }
  return keys;
}

export class Dispatcher {
  readonly #deps: DispatcherDeps;
  readonly #random: () => number;
  readonly #breaker: BreakerSettings;
  readonly #inFlight = new Map<string, Promise<void>>();
  readonly #tokens = new Map<string, number>();
  /** Slots promised to a claim in progress, so two claims never overfill this worker. */
  #reserved = 0;
  #sweptAt = 0;
  /** When the last claim started (`performance.now()`: a wall clock stepping back must not stall wake-ups). */
  #lastClaimStartedAt = Number.NEGATIVE_INFINITY;
  /** When stopping, the time after which unwritable completions are given up (their leases expire). */
  #giveUpAt = Number.POSITIVE_INFINITY;
  #pendingCompletions: { completion: Completion; done: () => void }[] = [];
  #flushing: Promise<void> | undefined;
  #running = false;
  #loop: Promise<void> | undefined;
  #wake: (() => void) | undefined;
  #wakePending = false;
  #delayed: NodeJS.Timeout | undefined;
  #unsubscribe: (() => void) | undefined;

  constructor(deps: DispatcherDeps) {
    this.#deps = deps;
    this.#random = deps.random ?? Math.random;
    this.#breaker = {
      threshold: deps.config.breakerThreshold,
      disableAfterMs: deps.config.disableAfter,
      schedule: deps.config.retrySchedule,
      random: this.#random,
    };
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#unsubscribe = this.#deps.wakeup.subscribe(() => this.#woken());
    this.#loop = this.#run();
  }

  get inFlight(): number {
    return this.#inFlight.size;
  }

  /** Stops claiming, waits up to graceMs for in-flight attempts, then releases what is left. */
  async stop(graceMs: number): Promise<void> {
    if (!this.#running) return;
    this.#running = false;
    this.#giveUpAt = Date.now() + graceMs;
    this.#unsubscribe?.();
    this.#signal();
    await this.#loop;
    // A completion batch written before the stop may have claimed work: it is in flight once this returns.
    await this.#drainCompletions();
    let timer: NodeJS.Timeout | undefined;
    const grace = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, graceMs);
    });
    await Promise.race([Promise.allSettled([...this.#inFlight.values()]), grace]);
    clearTimeout(timer);
    if (this.#inFlight.size > 0) {
      // Past the grace period: cut off what is still sending, so nothing reaches a receiver after its lease is released.
      this.#deps.log.warn(
        { inFlight: this.#inFlight.size },
        "aborting attempts still in flight after the grace period",
      );
      this.#deps.sender.abortAll();
      await Promise.allSettled([...this.#inFlight.values()]);
    }
    // Every batch being written must land before leases are released, or a success could be sent again.
    await this.#drainCompletions();
    const released = await releaseLeases(this.#deps.adapter, [...this.#tokens.keys()]);
    if (released > 0) this.#deps.log.warn({ released }, "released unfinished deliveries at shutdown");
    this.#tokens.clear();
  }

  async #run(): Promise<void> {
    const { config, log } = this.#deps;
    while (this.#running) {
      let sleepMs = config.pollInterval;
      try {
        const limit = this.#free();
        if (limit > 0) {
          const { claimed, now } = await this.#claim(limit, (limits) => claimDeliveries(this.#deps.adapter, limits));
          if (claimed.length === limit) {
            // Drain, but let the event loop breathe: with SQLite every query resolves as a microtask.
            await new Promise((resolve) => setImmediate(resolve));
            continue;
          }
          const due = await nextDueAt(this.#deps.adapter);
          // Due already but not claimed means every slot for it is taken: a completion wakes us, or the poll.
          if (due !== undefined && due > now) sleepMs = Math.min(sleepMs, due - now);
        }
      } catch (error) {
        log.error({ err: error }, "dispatcher claim failed");
        sleepMs = ERROR_BACKOFF_MS;
      }
      if (!this.#running) break;
      await this.#sleep(Math.max(1, sleepMs));
    }
  }

  /** A commit created deliveries: claim, but not sooner than the dialect's spacing after the last claim. */
  #woken(): void {
    this.#signal(this.#lastClaimStartedAt + this.#deps.adapter.wakeupSpacingMs - performance.now());
  }

  /** Free slots of this worker, up to one claim batch; `leaving` attempts are about to free theirs. */
  #free(leaving = 0): number {
    const free = this.#deps.config.maxInFlight - this.#inFlight.size - this.#reserved + leaving;
    return Math.min(free, CLAIM_BATCH);
  }

  /** Claims up to `limit` with the slots reserved meanwhile, and launches what it got. */
  async #claim<T extends { claimed: ClaimedDelivery[] }>(
    limit: number,
    claim: (limits: ClaimLimits) => Promise<T>,
  ): Promise<T> {
    const { config } = this.#deps;
    // A completion batch that claims nothing (no free slot, or stopping) is not a claim.
    if (limit > 0) this.#lastClaimStartedAt = performance.now();
    const sweepExpired = Date.now() - this.#sweptAt >= SWEEP_EVERY_MS;
    this.#reserved += limit;
    try {
      const result = await claim({
        limit,
        perEndpoint: config.maxInFlightPerEndpoint,
        leaseMs: config.lease,
        sweepExpired,
      });
      if (sweepExpired) this.#sweptAt = Date.now();
      for (const delivery of result.claimed) this.#launch(delivery);
      return result;
    } finally {
      this.#reserved -= limit;
    }
  }

  /**
   * A wake-up that arrives while the loop is busy claiming is kept for the next sleep, not lost.
   * With `delayMs`, it comes that much later, and signals asking meanwhile join it: completions
   * landing together refill in one claim, and wake-ups wait out the dialect's spacing.
   */
  #signal(delayMs = 0): void {
    if (delayMs > 0) {
      if (this.#delayed) return;
      this.#delayed = setTimeout(() => {
        this.#delayed = undefined;
        this.#signal();
      }, delayMs);
      return;
    }
    if (this.#wake) this.#wake();
    else this.#wakePending = true;
  }

  #sleep(ms: number): Promise<void> {
    if (this.#wakePending) {
      this.#wakePending = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#wake = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.#wake = done;
    });
  }

  #launch(delivery: ClaimedDelivery): void {
    this.#tokens.set(delivery.lease_token, (this.#tokens.get(delivery.lease_token) ?? 0) + 1);
    // By attempt, not by delivery: a retry due at once can be claimed again while its last attempt is still being recorded.
    const key = `${delivery.id}/${delivery.lease_token}`;
    // An attempt cut off at shutdown records nothing: its lease stays listed, for stop() to release.
    let keepLease = false;
    const attempt = this.#attempt(delivery)
      .then((recorded) => {
        keepLease = !recorded;
      })
      .catch((error) =>
        this.#deps.log.error({ err: error, delivery: delivery.id }, "delivery attempt failed to record"),
      )
      .finally(() => {
        this.#inFlight.delete(key);
        this.#deps.metrics?.inFlight.set(this.#inFlight.size);
        if (keepLease) return;
        const left = (this.#tokens.get(delivery.lease_token) ?? 1) - 1;
        if (left > 0) this.#tokens.set(delivery.lease_token, left);
        else this.#tokens.delete(delivery.lease_token);
      });
    this.#inFlight.set(key, attempt);
    this.#deps.metrics?.inFlight.set(this.#inFlight.size);
  }

  /** Sends one attempt and records it; false when it was cut off at shutdown and recorded nothing. */
  async #attempt(delivery: ClaimedDelivery): Promise<boolean> {
    const { keyBox, sender } = this.#deps;
    const startedAt = Date.now();
    let headers: Record<string, string> = {};
    let result: SendResult;
    try {
      headers = {
        "content-type": "application/json",
        "user-agent": `carehooks/${version}`,
        ...signatureHeaders({
          eventId: delivery.event_id,
          timestamp: Math.floor(startedAt / 1000),
          body: delivery.payload,
          keys: signingKeys(delivery, keyBox, startedAt),
        }),
      };
      result = await sender.send({ url: delivery.endpoint, headers, body: delivery.payload });
    } catch (error) {
      // A key that cannot be opened (wrong master key, damaged row) must not loop through leases forever.
      result = { kind: "error", error: "network", message: `cannot sign: ${(error as Error).message}`, durationMs: 0 };
    }
    // Cut off by our own shutdown: not the receiver's doing, so no attempt is spent; the lease goes back.
    if (result.kind === "aborted") return false;
    const finishedAt = Date.now();
    const n = delivery.attempts + 1;
    const outcome = outcomeOf(
      result.kind === "response" ? result : { kind: "error", error: result.error, message: result.message },
      {
        now: finishedAt,
        schedule: this.#deps.config.retrySchedule,
        attemptsInRound: n - delivery.retries_from,
        random: this.#random,
      },
    );
    this.#deps.metrics?.attempts.inc({ outcome: outcome.kind });
    this.#deps.metrics?.attemptDuration.observe(result.durationMs / 1000);
    const completion: Completion = {
      deliveryId: delivery.id,
      subscriptionId: delivery.subscription_id,
      leaseToken: delivery.lease_token,
      outcome,
      decidedAt: finishedAt,
      statusCode: result.kind === "response" ? result.status : null,
      error:
        result.kind === "error"
          ? `${result.error}: ${result.message}`
          : outcome.kind === "succeeded"
            ? null
            : outcome.reason,
      attempt: {
        id: newId("attempt", startedAt),
        delivery_id: delivery.id,
        n,
        started_at: startedAt,
        duration_ms: Math.round(result.durationMs),
        request_headers: JSON.stringify(headers),
        response_status: result.kind === "response" ? result.status : null,
        response_body: result.kind === "response" ? result.body : null,
        error: result.kind === "error" ? `${result.error}: ${result.message}` : null,
      },
    };
    await this.#complete(completion);
    return true;
  }

  /** Waits until no completion is waiting or being written, through the one flush at a time. */
  async #drainCompletions(): Promise<void> {
    while (this.#flushing || this.#pendingCompletions.length > 0) {
      this.#flushing ??= this.#flush();
      await this.#flushing;
    }
  }

  /** Completions that finish together are written in one transaction. */
  #complete(completion: Completion): Promise<void> {
    return new Promise((resolve) => {
      this.#pendingCompletions.push({ completion, done: resolve });
      if (!this.#flushing) this.#flushing = new Promise((r) => setImmediate(r)).then(() => this.#flush());
    });
  }

  /**
   * Writes waiting completions, and in the same transaction claims work for the
   * slots they free: one commit per turn of a busy endpoint, not two.
   */
  async #flush(): Promise<void> {
    const { adapter, log } = this.#deps;
    while (this.#pendingCompletions.length > 0) {
      const batch = this.#pendingCompletions.splice(0, 500);
      const completions = batch.map((item) => item.completion);
      // Only successes in, and nothing left to claim: no new due time, nothing for the claim loop to do.
      let quiet = false;
      for (;;) {
        try {
          const limit = this.#running ? Math.max(0, this.#free(batch.length)) : 0;
          const { summary, exhausted } = await this.#claim(limit, (limits) =>
            adapter.db.transaction().execute(async (trx) => {
              const summary = await completeWithin(adapter, trx, completions, this.#breaker);
              // Not claiming is not knowing there is nothing to claim: while running, the claim loop looks.
              if (limits.limit === 0) return { summary, claimed: [], exhausted: !this.#running };
              const { claimed, exhausted } = await claimWithin(adapter, trx, limits, summary.now);
              return { summary, claimed, exhausted };
            }),
          );
          quiet = exhausted && completions.every((completion) => completion.outcome.kind === "succeeded");
          if (summary.fenced > 0)
            log.info({ fenced: summary.fenced }, "attempts recorded after their lease was taken over");
          for (const id of summary.disabled) log.warn({ subscription: id }, "subscription disabled");
          break;
        } catch (error) {
          // The leases still hold: keep trying until they would expire, then another worker takes over.
          log.error({ err: error }, "recording completions failed; retrying");
          await new Promise((r) => setTimeout(r, ERROR_BACKOFF_MS));
          // Stopping with the database down: after the grace period the leases are left to expire.
          if (!this.#running && Date.now() >= this.#giveUpAt) break;
        }
      }
      for (const item of batch) item.done();
      // A retry or a breaker change sets a due time the claim loop must sleep towards; work left over needs a claim.
      if (!quiet) this.#signal(REFILL_COALESCE_MS);
    }
    this.#flushing = undefined;
  }
}
