/**
 * The whole-attempt deadline (CAREHOOKS_REQUEST_TIMEOUT, connect to last body
 * byte) for every attempt in flight, kept by one timer instead of an
 * AbortController and a timer per attempt. undici's own timeouts are idle
 * gaps (headers, then between body chunks), so a receiver dribbling its body
 * would outlast them; this cuts it off.
 *
 * Every attempt gets the same timeout, so attempts in start order are also in
 * deadline order: the timer only ever waits for the oldest one in flight, and
 * a sweep stops at the first attempt that is not overdue.
 */

/** Most a deadline may be overshot so that attempts expiring together share one wake-up. */
const MAX_SLACK_MS = 100;

/**
 * One attempt in flight, and the abort signal undici listens to. undici's
 * `signal` option takes an EventEmitter as well as an AbortSignal: it reads
 * `aborted` and `reason`, subscribes with `once("abort")` and unsubscribes with
 * `removeListener` when the response body closes. That is all this implements,
 * which is much less than an AbortController's EventTarget.
 */
export class InFlight {
  aborted = false;
  reason: Error | undefined;
  #listeners: (() => void)[] = [];

  constructor(readonly deadline: number) {}

  /** Aborts the attempt (the first reason wins): undici destroys its request or response body with `reason`. */
  abort(reason: Error): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    const listeners = this.#listeners;
    this.#listeners = [];
    for (const listener of listeners) listener();
  }

  on(_event: "abort", listener: () => void): this {
    this.#listeners.push(listener);
    return this;
  }

  once(event: "abort", listener: () => void): this {
    return this.on(event, listener);
  }

  removeListener(_event: "abort", listener: () => void): this {
    const index = this.#listeners.indexOf(listener);
    if (index !== -1) this.#listeners.splice(index, 1);
    return this;
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
  readonly #slackMs: number;
  /** In start order, which is deadline order. */
  readonly #inFlight = new Set<InFlight>();
  #timer: NodeJS.Timeout | undefined;

  constructor(timeoutMs: number) {
    this.#timeoutMs = timeoutMs;
    this.#slackMs = Math.min(MAX_SLACK_MS, timeoutMs / 20);
  }

  get size(): number {
    return this.#inFlight.size;
  }

  /** Registers an attempt starting now; `finish` it however it ends. */
  start(): InFlight {
    const attempt = new InFlight(performance.now() + this.#timeoutMs);
    this.#inFlight.add(attempt);
    // An armed timer waits for an older deadline, so it comes before this one.
    if (this.#timer === undefined) this.#arm(attempt.deadline);
    return attempt;
  }

  finish(attempt: InFlight): void {
    // The timer stays armed: it costs nothing to let it find no one overdue, and re-arming per attempt would.
    this.#inFlight.delete(attempt);
  }

  /** Aborts every attempt in flight with `reason`. */
  abortAll(reason: Error): void {
    for (const attempt of this.#inFlight) attempt.abort(reason);
  }

  /** Stops the timer (once nothing is in flight). */
  stop(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #arm(deadline: number): void {
    const delay = Math.max(0, deadline - performance.now()) + this.#slackMs;
    // Unref'd: an attempt keeps the process alive through its socket, never through its deadline.
    this.#timer = setTimeout(() => this.#sweep(), delay).unref();
  }

  #sweep(): void {
    this.#timer = undefined;
    const now = performance.now();
    // Made only when needed and shared by the sweep: an Error captures a stack.
    let timeout: AttemptTimeout | undefined;
    for (const attempt of this.#inFlight) {
      if (attempt.deadline > now) {
        this.#arm(attempt.deadline);
        return;
      }
      this.#inFlight.delete(attempt);
      timeout ??= new AttemptTimeout(this.#timeoutMs);
      attempt.abort(timeout);
    }
  }
}
