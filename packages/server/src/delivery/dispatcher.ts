/**
 * The dispatcher (the worker role): claims due deliveries in batches under a
 * lease, signs and sends each, and hands the outcome to the completion
 * batcher.
 *
 * - Claim: one statement per batch (store/queue/claim.ts), up to this
 *   worker's free slots. A full batch means more is due: claim again as slots
 *   free up. A batch that filled an endpoint's slots is refilled as that
 *   endpoint answers, crediting the answered deliveries whose outcome is not
 *   written yet, so a slot is free when the response ends, not when the
 *   outcome commits.
 * - Lease ahead: one worker sends an endpoint's deliveries at a time (SQLite
 *   has one dispatcher; on PostgreSQL the subscription's `sender`, see
 *   store/queue/claim.ts), so it keeps the endpoint's cap in memory and a
 *   claim may lease up to LEASE_AHEAD times the cap (less as more endpoints
 *   have lanes here, to leave room in this worker's budget); the extra wait in its
 *   lane (lanes.ts) and go as its responses end, so a busy endpoint's slots
 *   never wait for a claim, and claims are few and large. A failure or the
 *   breaker opening sends the waiting ones back unsent.
 * - Complete: outcomes are written in batches (completion-batcher.ts,
 *   store/queue/complete.ts). Claims and completion writes take turns, so the
 *   credit a claim is given always matches what the database has recorded.
 * - Breaker: kept in memory (health-book.ts), written when it changes.
 * - Liveness: the worker registers before its first claim and beats
 *   (heartbeat.ts); a dead worker's leases are returned by the others.
 * - Sleep: until the earliest of a wake-up (a commit created deliveries, or
 *   leases came back), the next due time, a freed slot, or the poll interval.
 * - Stop: claim nothing more, let attempts in flight finish within the grace
 *   period, cut off the rest, write every outcome, then return whatever this
 *   worker still holds to pending.
 */
import { randomBytes } from "node:crypto";
import os from "node:os";
import type { FastifyBaseLogger } from "fastify";
import type { Config } from "../config/load.js";
import type { Health } from "../domain/breaker.js";
import { outcomeOf } from "../domain/delivery-outcome.js";
import { newId } from "../domain/ids.js";
import type { KeyBox } from "../domain/key-box.js";
import { requestHeaders } from "../domain/request-headers.js";
import type { DeliveryMetrics } from "../ops/delivery-metrics.js";
import type { DialectAdapter } from "../store/dialect/adapter.js";
import { deliveriesExhausted } from "../store/operational-events.js";
import {
  type ClaimedDelivery,
  type ClaimedWebhook,
  LEASE_AHEAD,
  leaseAheadFor,
  nextDueIn,
} from "../store/queue/claim.js";
import type { Completion, CompletionResult } from "../store/queue/complete.js";
import { type DeliveryQueue, directQueue } from "../store/queue/delivery-queue.js";
import { writeHealth } from "../store/queue/health.js";
import { releaseLeases, releaseWorker, type WorkerIdentity } from "../store/queue/workers.js";
import type { Wakeup } from "../store/wakeup.js";
import { version } from "../version.js";
import { CompletionBatcher } from "./completion-batcher.js";
import { FailureLog } from "./failure-log.js";
import { HealthBook } from "./health-book.js";
import { Heartbeat } from "./heartbeat.js";
import { Lanes } from "./lanes.js";
import type { Sender, SendResult } from "./sender.js";
import { WebhookOptions } from "./webhook-options.js";

const CLAIM_BATCH = 100;
const COMPLETION_BATCH = 200;
const ERROR_BACKOFF_MS = 500;
/** How long a freed slot waits for others before the dispatcher claims again. */
const REFILL_COALESCE_MS = 1;

export interface DispatcherDeps {
  readonly adapter: DialectAdapter;
  /** Where claims and completions run: the adapter's connection unless given (delivery/thread.ts). */
  readonly queue?: DeliveryQueue;
  readonly config: Config;
  readonly keyBox: KeyBox;
  readonly sender: Sender;
  readonly wakeup: Wakeup;
  readonly log: FastifyBaseLogger;
  readonly metrics?: DeliveryMetrics;
  readonly random?: () => number;
}

export class Dispatcher {
  readonly #deps: DispatcherDeps;
  readonly #random: () => number;
  readonly #queue: DeliveryQueue;
  readonly #me: WorkerIdentity;
  readonly #book: HealthBook;
  readonly #heartbeat: Heartbeat;
  readonly #batcher: CompletionBatcher<Completion, CompletionResult>;
  /** Attempts being sent now. */
  readonly #sending = new Set<Promise<void>>();
  /** Per subscription: attempts sending (at most its cap), deliveries leased ahead, its rate limit. */
  readonly #lanes: Lanes;
  readonly #failures: FailureLog;
  readonly #options: WebhookOptions;
  /** Per rate-limited subscription waiting for a token: the timer that sends its next delivery. */
  readonly #tokenTimers = new Map<string, NodeJS.Timeout>();
  /** Deliveries answered whose outcome is not written yet (their slots are free), with their lease tokens. */
  readonly #credit = new Map<string, string>();
  /** Claims and completion writes, one at a time. */
  #turn: Promise<unknown> = Promise.resolve();
  /** The last claim filled this worker or an endpoint: more may be due as slots free up. */
  #more = false;
  /** When the last claim started (`performance.now()`: a wall clock stepping back must not stall wake-ups). */
  #lastClaimStartedAt = Number.NEGATIVE_INFINITY;
  /** When stopping, the time after which unwritable completions are given up. */
  #giveUpAt = Number.POSITIVE_INFINITY;
  #running = false;
  #loop: Promise<void> | undefined;
  #wake: (() => void) | undefined;
  #wakePending = false;
  #delayed: NodeJS.Timeout | undefined;
  #unsubscribe: (() => void) | undefined;

  constructor(deps: DispatcherDeps) {
    this.#deps = deps;
    this.#random = deps.random ?? Math.random;
    this.#queue = deps.queue ?? directQueue(deps.adapter);
    const { config, adapter, log } = deps;
    this.#me = { id: `wrk_${randomBytes(10).toString("hex")}`, host: os.hostname(), pid: process.pid };
    this.#lanes = new Lanes(config.maxInFlightPerEndpoint, LEASE_AHEAD);
    this.#failures = new FailureLog(log, config.failureLogInterval);
    this.#options = new WebhookOptions(deps.keyBox, config.retrySchedule);
    this.#book = new HealthBook({
      threshold: config.breakerThreshold,
      disableAfterMs: config.disableAfter,
      schedule: config.retrySchedule,
      random: this.#random,
    });
    this.#heartbeat = new Heartbeat({
      adapter,
      me: this.#me,
      settings: { timeoutMs: config.workerTimeout, leaseMs: config.lease },
      log,
      returned: (count) => {
        deps.metrics?.leasesReturned(count);
        deps.wakeup.notify();
      },
      freed: () => deps.wakeup.notify(),
    });
    this.#batcher = new CompletionBatcher({
      maxItems: COMPLETION_BATCH,
      maxDelayMs: config.completionFlush,
      retryDelayMs: ERROR_BACKOFF_MS,
      write: (batch) => this.#inTurn(() => this.#write(batch)),
      written: (batch, result) => this.#written(batch, result),
      failed: (error) => log.error({ err: error }, "recording completions failed; retrying"),
      keepTrying: () => this.#running || Date.now() < this.#giveUpAt,
    });
    deps.metrics?.inFlightFrom(() => this.#sending.size);
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#loop = this.#run();
  }

  get inFlight(): number {
    return this.#sending.size;
  }

  /** Stops claiming, waits up to graceMs for attempts in flight, writes their outcomes, then releases what is left. */
  async stop(graceMs: number): Promise<void> {
    if (!this.#running) return;
    this.#running = false;
    this.#giveUpAt = Date.now() + graceMs;
    this.#unsubscribe?.();
    clearTimeout(this.#delayed);
    for (const timer of this.#tokenTimers.values()) clearTimeout(timer);
    this.#tokenTimers.clear();
    this.#signal();
    await this.#loop;
    let timer: NodeJS.Timeout | undefined;
    const grace = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, graceMs);
    });
    await Promise.race([Promise.allSettled([...this.#sending]), grace]);
    clearTimeout(timer);
    if (this.#sending.size > 0) {
      // Past the grace period: cut off what is still sending, so nothing reaches a receiver after its lease is released.
      this.#deps.log.warn({ inFlight: this.#sending.size }, "aborting attempts still in flight after the grace period");
      this.#deps.sender.abortAll();
      await Promise.allSettled([...this.#sending]);
    }
    // Every outcome must be written before leases are released, or a success could be sent again.
    await this.#batcher.flush();
    await this.#heartbeat.stop();
    try {
      const released = await releaseWorker(this.#deps.adapter, this.#me.id);
      if (released > 0) {
        this.#deps.log.warn({ released }, "released unfinished deliveries at shutdown");
        // Other workers (PostgreSQL) may be waiting for these slots.
        this.#deps.wakeup.notify();
      }
    } catch (error) {
      this.#deps.log.error({ err: error }, "could not release leases at shutdown; the other workers will");
    }
  }

  async #run(): Promise<void> {
    const { config, log } = this.#deps;
    // Registered before the first claim: leases must name a worker the others can see beating.
    while (this.#running) {
      try {
        await this.#heartbeat.start();
        break;
      } catch (error) {
        log.error({ err: error }, "cannot register this worker; retrying");
        await this.#sleep(ERROR_BACKOFF_MS);
      }
    }
    this.#unsubscribe = this.#deps.wakeup.subscribe(() => this.#woken());
    while (this.#running) {
      let sleepMs = config.pollInterval;
      try {
        const limit = Math.min(this.#free(), CLAIM_BATCH);
        if (!this.#heartbeat.alive) {
          // Cut off from the database for most of the timeout: the others may be returning our leases.
          log.warn("this worker's heartbeat is late; not claiming until it beats again");
          sleepMs = ERROR_BACKOFF_MS;
        } else if (limit > 0) {
          const claimed = await this.#claim(limit);
          if (claimed.length === limit) {
            // Drain, but let the event loop breathe: with SQLite every query resolves as a microtask.
            await new Promise((resolve) => setImmediate(resolve));
            continue;
          }
          if (claimed.length === 0) {
            // Due later: sleep until then. Due now but not claimed: its slots are taken (here, a freed slot
            // wakes us; at another worker, the poll does) or another worker is claiming it.
            const dueIn = await nextDueIn(this.#deps.adapter);
            if (dueIn !== undefined && dueIn > 0) sleepMs = Math.min(sleepMs, dueIn);
          }
        }
      } catch (error) {
        log.error({ err: error }, "dispatcher claim failed");
        sleepMs = ERROR_BACKOFF_MS;
      }
      if (!this.#running) break;
      await this.#sleep(Math.max(1, sleepMs));
    }
  }

  /**
   * How many times its cap an endpoint may lease ahead: LEASE_AHEAD at most, less as more endpoints
   * have lanes here, so that what they lease ahead, which counts against this worker's free slots,
   * tends to leave room for one more endpoint's cap. With a fixed 16, two busy endpoints with a cap
   * of 10 filled a worker's 256 and kept a third below its cap. It is a tendency, not a promise:
   * what an endpoint leased under a larger lookahead is not given back, it drains as it is sent, and
   * every lane counts alike, whatever it holds.
   */
  #leaseAhead(): number {
    const { maxInFlight, maxInFlightPerEndpoint } = this.#deps.config;
    return leaseAheadFor(maxInFlight / (maxInFlightPerEndpoint * (this.#lanes.active + 1)));
  }

  /** Free slots of this worker: what it sends and what waits in its lanes both count. */
  #free(): number {
    return this.#deps.config.maxInFlight - this.#sending.size - this.#lanes.ready;
  }

  /**
   * Runs a claim or a completion write when no other is running: a claim never reads a subscription
   * between an outcome's commit and the breaker change it caused, and on PostgreSQL never skips
   * (SKIP LOCKED) a subscription whose row this worker's own completion holds.
   */
  #inTurn<T>(work: () => Promise<T>): Promise<T> {
    const result = this.#turn.then(work);
    this.#turn = result.catch(() => undefined);
    return result;
  }

  async #claim(limit: number): Promise<ClaimedDelivery[]> {
    const { config } = this.#deps;
    this.#lastClaimStartedAt = performance.now();
    const leaseAhead = this.#leaseAhead();
    this.#lanes.leaseAhead = leaseAhead;
    const { claimed } = await this.#inTurn(() =>
      this.#queue.claim({
        limit,
        perEndpoint: config.maxInFlightPerEndpoint,
        leaseMs: config.lease,
        workerId: this.#me.id,
        credit: new Map(this.#credit),
        leaseAhead,
      }),
    );
    this.#deps.metrics?.claimed(claimed.length);
    const touched = new Map<string, ClaimedWebhook>();
    for (const delivery of claimed) {
      this.#lanes.add(delivery);
      touched.set(delivery.subscription_id, delivery.webhook);
    }
    for (const [subscriptionId, webhook] of touched) {
      this.#book.seen(subscriptionId, webhook);
      this.#pump(subscriptionId);
    }
    // Work was due, or this worker holds some: more may be due, held back by an endpoint's cap or this
    // claim's limit. A freed slot claims again, until a claim comes back empty with nothing in flight.
    this.#more = claimed.length > 0 || this.#sending.size > 0;
    return claimed;
  }

  /** A commit created deliveries: claim, but not sooner than the dialect's spacing after the last claim. */
  #woken(): void {
    this.#signal(this.#lastClaimStartedAt + this.#deps.adapter.wakeupSpacingMs - performance.now());
  }

  /**
   * A wake-up that arrives while the loop is busy claiming is kept for the next sleep, not lost.
   * With `delayMs`, it comes that much later, and signals asking meanwhile join it: slots freed
   * together refill in one claim, and wake-ups wait out the dialect's spacing.
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
    const attempt = this.#attempt(delivery)
      .catch((error) => {
        // Its outcome was never decided: the delivery goes back to the queue rather than stay held.
        this.#deps.log.error(
          { err: error, delivery: delivery.id },
          "delivery attempt failed; returning it to the queue",
        );
        this.#credit.delete(delivery.id);
        return releaseLeases(this.#deps.adapter, [{ id: delivery.id, token: delivery.lease_token }]).then(
          () => false,
          (releaseError) => {
            this.#deps.log.error({ err: releaseError, delivery: delivery.id }, "could not return it");
            return false;
          },
        );
      })
      .then((succeeded) => {
        this.#sending.delete(attempt);
        this.#next(delivery.subscription_id, succeeded);
        // Claim more once a lane has used up half of what the lookahead lets it lease ahead.
        if (this.#more && this.#running && this.#lanes.low(delivery.subscription_id)) this.#signal(REFILL_COALESCE_MS);
      });
    this.#sending.add(attempt);
  }

  /**
   * A slot of this subscription is free: the next delivery waiting in its lane goes now. After a
   * failure, or once the breaker has opened, the waiting ones go back to the queue unsent: a
   * failing endpoint gets no more requests before its breaker trips than its cap, as without
   * leasing ahead. When stopping they stay, and are released with the rest of this worker's leases.
   */
  #next(subscriptionId: string, succeeded: boolean): void {
    this.#lanes.finished(subscriptionId);
    if (this.#lanes.waiting(subscriptionId) === 0 || !this.#running) return;
    if (!succeeded || (this.#book.state(subscriptionId) ?? "active") !== "active") {
      const waiting = this.#lanes.takeWaiting(subscriptionId);
      releaseLeases(
        this.#deps.adapter,
        waiting.map((delivery) => ({ id: delivery.id, token: delivery.lease_token })),
      ).then(
        () => this.#signal(REFILL_COALESCE_MS),
        (error) => this.#deps.log.error({ err: error }, "could not return deliveries waiting for an open breaker"),
      );
      return;
    }
    this.#pump(subscriptionId);
  }

  /**
   * Sends what waits in a subscription's lane while it has free slots and, when it is rate
   * limited, tokens; a rate-limited lane out of tokens is pumped again when the next one is due.
   */
  #pump(subscriptionId: string): void {
    if (!this.#running) return;
    let now: number;
    for (;;) {
      now = performance.now();
      const next = this.#lanes.next(subscriptionId, now);
      if (!next) break;
      this.#launch(next);
    }
    // The same instant as the refusal: a token that came whole a moment later would read as "no wait"
    // with nothing left to pump again (a timer fires up to a millisecond early by this clock).
    const wait = this.#lanes.tokenIn(subscriptionId, now);
    if (wait > 0 && !this.#tokenTimers.has(subscriptionId)) {
      this.#tokenTimers.set(
        subscriptionId,
        setTimeout(() => {
          this.#tokenTimers.delete(subscriptionId);
          this.#pump(subscriptionId);
        }, wait),
      );
    }
  }

  /** Sends one attempt and hands its outcome to the batcher; one cut off at shutdown records nothing. */
  async #attempt(delivery: ClaimedDelivery): Promise<boolean> {
    const { sender } = this.#deps;
    const startedAt = Date.now();
    /** What the attempt log rebuilds its headers from; null when nothing was sent. */
    let meta: string | null = null;
    let schedule: readonly number[] | undefined;
    let result: SendResult;
    try {
      const options = this.#options.of(delivery.webhook, startedAt);
      schedule = options.schedule;
      const signing = options.signingAt(startedAt);
      const headers = requestHeaders({
        eventId: delivery.event_id,
        timestamp: Math.floor(startedAt / 1000),
        body: delivery.payload,
        keys: signing.keys,
        custom: options.custom,
        version,
      });
      meta = signing.meta;
      result = await sender.send({
        url: delivery.webhook.endpoint,
        headers,
        body: delivery.payload,
        timeoutMs: delivery.webhook.timeout_ms ?? undefined,
      });
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
        schedule: schedule ?? this.#options.scheduleOf(delivery.webhook),
        attemptsInRound: n - delivery.retries_from,
        random: this.#random,
      },
    );
    this.#deps.metrics?.attempted(outcome.kind, result.durationMs / 1000);
    const failure = result.kind === "error" ? storable(`${result.error}: ${result.message}`) : null;
    if (outcome.kind !== "succeeded") {
      this.#failures.failed({
        subscriptionId: delivery.subscription_id,
        deliveryId: delivery.id,
        attempt: n,
        status: result.kind === "response" ? result.status : null,
        error: failure,
        outcome: outcome.kind,
      });
    }
    // A success frees its slot now; a failure's slot frees once its outcome, and what the breaker
    // makes of it, is written: a failing endpoint is not refilled ahead of its breaker.
    if (outcome.kind === "succeeded") this.#credit.set(delivery.id, delivery.lease_token);
    this.#batcher.add({
      deliveryId: delivery.id,
      subscriptionId: delivery.subscription_id,
      leaseToken: delivery.lease_token,
      outcome,
      decidedAt: finishedAt,
      statusCode: result.kind === "response" ? result.status : null,
      error: failure ?? (outcome.kind === "succeeded" ? null : outcome.reason),
      attempt: {
        id: newId("attempt", startedAt),
        delivery_id: delivery.id,
        n,
        started_at: startedAt,
        duration_ms: Math.round(result.durationMs),
        // Rebuilt from request_meta when read ("{}" is what a reader without it shows).
        request_headers: "{}",
        request_meta: meta,
        response_status: result.kind === "response" ? result.status : null,
        response_body: result.kind === "response" ? storable(result.body) : null,
        error: failure,
      },
    });
    return outcome.kind === "succeeded";
  }

  /**
   * Writes a batch of outcomes and, in the same turn (before the next claim), the breaker changes
   * they make: a failed probe's next probe time is written before anything can claim another.
   * The credit the outcomes held is spent in the same turn.
   */
  async #write(batch: readonly Completion[]): Promise<CompletionResult> {
    const result = await this.#record(batch);
    for (const completion of batch) this.#credit.delete(completion.deliveryId);
    await this.#writeBreaker(batch, result);
    await this.#announceExhausted(batch, result);
    return result;
  }

  /**
   * Raises delivery.exhausted for the deliveries of the batch that ran out of
   * retries. After their outcome's commit, in a transaction of its own: should
   * this worker die between the two, those events are not raised (the
   * deliveries are failed all the same, and the delivery log shows it).
   */
  async #announceExhausted(batch: readonly Completion[], { moved, now }: CompletionResult): Promise<void> {
    const exhausted = batch
      .filter((completion) => completion.outcome.kind === "failed" && moved.has(completion.deliveryId))
      .map((completion) => completion.deliveryId);
    if (exhausted.length === 0) return;
    const { adapter, log, wakeup } = this.#deps;
    try {
      const deliveries = await adapter.db
        .transaction()
        .execute((trx) => deliveriesExhausted(adapter, trx, exhausted, now));
      if (deliveries > 0) wakeup.notify();
    } catch (error) {
      log.error({ err: error, deliveries: exhausted.length }, "could not raise delivery.exhausted");
    }
  }

  /** One completion write, counted in /metrics once it is done. */
  async #complete(batch: readonly Completion[]): Promise<CompletionResult> {
    const result = await this.#queue.complete(batch);
    this.#deps.metrics?.completed(batch.length);
    return result;
  }

  /**
   * One batch, or, when the database refuses it for something one of its rows holds (not for
   * being unavailable), its halves: one bad row must not hold up every outcome after it.
   */
  async #record(batch: readonly Completion[]): Promise<CompletionResult> {
    const { adapter, log } = this.#deps;
    try {
      return await this.#complete(batch);
    } catch (error) {
      // A deadlock's abort outlasting its retries (store/aborts.ts) is the moment's, not a row's: the batch waits.
      if (adapter.isUnavailable(error) || adapter.isTransientAbort(error) || batch.length === 0) throw error;
      if (batch.length > 1) {
        const half = Math.ceil(batch.length / 2);
        const first = await this.#record(batch.slice(0, half));
        const second = await this.#record(batch.slice(half));
        return { moved: new Set([...first.moved, ...second.moved]), now: second.now };
      }
      const [only] = batch as [Completion];
      log.error(
        { err: error, delivery: only.deliveryId },
        "the database refused an attempt's detail; recording it without",
      );
      try {
        return await this.#complete([withoutDetail(only, error as Error)]);
      } catch (again) {
        if (adapter.isUnavailable(again)) throw again;
        log.error(
          { err: again, delivery: only.deliveryId },
          "cannot record this outcome; returning the delivery to the queue",
        );
        await releaseLeases(adapter, [{ id: only.deliveryId, token: only.leaseToken }]);
        return { moved: new Set(), now: await adapter.now(adapter.db) };
      }
    }
  }

  /** Counts a written batch's outcomes in the breaker and writes the states that changed. */
  async #writeBreaker(batch: readonly Completion[], { moved, now }: CompletionResult): Promise<void> {
    const { log } = this.#deps;
    const changes = new Map<string, { before: Health; after: Health }>();
    for (const completion of batch) {
      if (!moved.has(completion.deliveryId)) continue;
      const change = this.#book.record(completion.subscriptionId, completion.outcome, now);
      if (!change) continue;
      const first = changes.get(change.subscriptionId);
      changes.set(change.subscriptionId, { before: first?.before ?? change.before, after: change.after });
    }
    for (const [subscriptionId, { before, after }] of changes) {
      try {
        const health = await writeHealth(this.#deps.adapter, subscriptionId, before, after, now);
        if (!health.written) this.#book.forget(subscriptionId);
        else if (after.state !== before.state) {
          if (health.deliveries > 0) this.#deps.wakeup.notify();
          this.#deps.metrics?.breakerChanged(after.state);
          const fields = { subscription: subscriptionId, reason: after.state_reason };
          if (after.state === "active") log.info(fields, "subscription recovered");
          else log.warn(fields, `subscription ${after.state}`);
        }
      } catch (error) {
        this.#book.forget(subscriptionId);
        log.error({ err: error, subscription: subscriptionId }, "could not record a subscription's state");
      }
    }
  }

  /** After a batch is written: report fencing, and wake the claim loop for retries and breaker changes. */
  #written(batch: readonly Completion[], { moved }: CompletionResult): void {
    const fenced = batch.length - moved.size;
    if (fenced > 0) this.#deps.log.info({ fenced }, "attempts recorded after their lease was taken over");
    // A retry or a breaker change sets a due time the claim loop must sleep towards.
    const quiet = batch.every((completion) => completion.outcome.kind === "succeeded");
    if (!quiet && this.#running) this.#signal(REFILL_COALESCE_MS);
  }
}

/** Text the database can store: PostgreSQL refuses NUL in text, and a receiver may answer with one. */
function storable(text: string): string {
  return text.includes("\u0000") ? text.replaceAll("\u0000", "\uFFFD") : text;
}

/** A completion with no attempt detail but its outcome, for a row the database refused. */
function withoutDetail(completion: Completion, error: Error): Completion {
  const note = storable(`attempt detail not recorded: ${error.message}`).slice(0, 500);
  return {
    ...completion,
    error: completion.error === null ? null : note,
    attempt: { ...completion.attempt, request_headers: "{}", request_meta: null, response_body: null, error: note },
  };
}
