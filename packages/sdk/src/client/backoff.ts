/** When to retry an API request, and how long to wait first. */

export interface BackoffPolicy {
  /** Retries after the first attempt. */
  readonly maxRetries: number;
  /** The first retry waits about this long; each next one twice as long. */
  readonly baseDelayMs: number;
  /** No computed wait is longer than this. */
  readonly maxDelayMs: number;
  /** A `Retry-After` longer than this is not waited for: the error is thrown instead. */
  readonly maxRetryAfterMs: number;
}

/** Statuses worth another attempt: the request was refused for now, or the server failed. */
export function isRetryableStatus(status: number): boolean {
  return status === 429 || (status >= 500 && status <= 599);
}

/** Exponential backoff with "equal jitter": between half and all of `base × 2^retry`, capped. */
export function backoffDelay(policy: BackoffPolicy, retry: number, random: () => number = Math.random): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** retry);
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}

/** `Retry-After` (delta seconds or an HTTP date) in milliseconds; undefined when absent or unreadable. */
export function parseRetryAfter(value: string | null, now: number = Date.now()): number | undefined {
  if (value === null) return undefined;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const at = Date.parse(text);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
