/**
 * The whole-attempt deadline (CAREHOOKS_REQUEST_TIMEOUT, or a webhook's
 * shorter `timeout`; connect to last body byte) for every attempt in flight,
 * kept by one timer instead of an AbortController and a timer per attempt.
 * undici's own timeouts are idle gaps (headers, then between body chunks), so
 * a receiver dribbling its body would outlast them; this cuts it off.
 *
 * Attempts are queued by their timeout: within one queue, start order is
 * deadline order, so the timer only ever waits for the earliest head of a
 * queue, and a sweep stops in each queue at the first attempt not overdue.
 * There are as many queues as distinct timeouts in use: one, or a handful.
 */

/** Most a deadline may be overshot so that attempts expiring together share one wake-up. */
const MAX_SLACK_MS = 100;

/**
 * One attempt in flight. Its deadline or a shutdown aborts it: the request
 * undici holds is stopped through what the attempt's handler attached once
 * undici started it (AttemptHandler), or at once when that comes later.
 */
export class InFlight {
  aborted = false;
  reason: Error | undefined;
  #stop: ((reason: Error) => void) | undefined;

  constructor(
    readonly deadline: number,
    readonly timeoutMs: number,
  ) {}

  /** Aborts the attempt (the first reason wins). */
  abort(reason: Error): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    this.#stop?.(reason);
    this.#stop = undefined;
  }

  /** How to stop the request now under way (undefined once it has ended); run at once if already aborted. */
  attach(stop: ((reason: Error) => void) | undefined): void {
    if (stop !== undefined && this.aborted) stop(this.reason as Error);
    else this.#stop = stop;
  }
}

/** The abort reason of a missed deadline, recognised by its class. */
export class AttemptTimeout extends Error {
  constructor(ms: number) {
    super(`no complete response within ${ms} ms`);
    this.name = "AttemptTimeout";
  }
}

export class AttemptDeadlines {
  readonly #timeoutMs: number;
  /** Per timeout: its attempts in start order, which is deadline order. */
  readonly #queues = new Map<number, Set<InFlight>>();
  #size = 0;
  #timer: NodeJS.Timeout | undefined;
  /** The deadline the armed timer waits for. */
  #armedFor = Number.POSITIVE_INFINITY;

  /** `timeoutMs`: an attempt's timeout unless `start` is given another. */
  constructor(timeoutMs: number) {
    this.#timeoutMs = timeoutMs;
  }

  get size(): number {
    return this.#size;
  }

  /** Registers an attempt starting now; `finish` it however it ends. */
  start(timeoutMs = this.#timeoutMs): InFlight {
    const attempt = new InFlight(performance.now() + timeoutMs, timeoutMs);
    let queue = this.#queues.get(timeoutMs);
    if (queue === undefined) {
      queue = new Set();
      this.#queues.set(timeoutMs, queue);
    }
    queue.add(attempt);
    this.#size += 1;
    // An armed timer waits for an earlier deadline unless this attempt has a shorter timeout than those before it.
    if (attempt.deadline < this.#armedFor) this.#arm(attempt.deadline);
    return attempt;
  }

  finish(attempt: InFlight): void {
    // The timer stays armed: it costs nothing to let it find no one overdue, and re-arming per attempt would.
    if (this.#queues.get(attempt.timeoutMs)?.delete(attempt)) this.#size -= 1;
  }

  /** Aborts every attempt in flight with `reason`. */
  abortAll(reason: Error): void {
    for (const queue of this.#queues.values()) for (const attempt of queue) attempt.abort(reason);
  }

  /** Stops the timer (once nothing is in flight). */
  stop(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#armedFor = Number.POSITIVE_INFINITY;
  }

  #arm(deadline: number): void {
    clearTimeout(this.#timer);
    const slack = Math.min(MAX_SLACK_MS, this.#timeoutMs / 20);
    const delay = Math.max(0, deadline - performance.now()) + slack;
    this.#armedFor = deadline;
    // Unref'd: an attempt keeps the process alive through its socket, never through its deadline.
    this.#timer = setTimeout(() => this.#sweep(), delay).unref();
  }

  #sweep(): void {
    this.#timer = undefined;
    this.#armedFor = Number.POSITIVE_INFINITY;
    const now = performance.now();
    let next = Number.POSITIVE_INFINITY;
    for (const [timeoutMs, queue] of this.#queues) {
      // Made only when needed and shared by the queue's sweep: an Error captures a stack.
      let timeout: AttemptTimeout | undefined;
      for (const attempt of queue) {
        if (attempt.deadline > now) {
          next = Math.min(next, attempt.deadline);
          break;
        }
        queue.delete(attempt);
        this.#size -= 1;
        timeout ??= new AttemptTimeout(timeoutMs);
        attempt.abort(timeout);
      }
      if (queue.size === 0) this.#queues.delete(timeoutMs);
    }
    if (next !== Number.POSITIVE_INFINITY) this.#arm(next);
  }
}
