/**
 * When a failed delivery is tried again (docs/retries.md, "The schedule").
 *
 * The schedule is configuration (`CAREHOOKS_RETRY_SCHEDULE`): delay i follows
 * failed attempt i + 1, and a delivery that has used every delay is
 * exhausted. Each delay gets ±20 % jitter so deliveries that failed together
 * (an endpoint outage) do not come back together. The random source is
 * passed in so tests are deterministic.
 */

/** Jitter in percent of the scheduled delay, either way. */
export const RETRY_JITTER_PERCENT = 20;

export type RetryDecision = { readonly kind: "retry"; readonly delayMs: number } | { readonly kind: "exhausted" };

/**
 * Decides what follows a failed attempt.
 *
 * `attemptsMade` counts attempts so far, the failed one included (1 after the
 * first). `random` returns a number in [0, 1), like `Math.random`.
 * `retryAfterMs` is the receiver's `Retry-After`; the caller passes it only
 * for 429 and 503. It is honoured within [delay, 2 × delay] of the jittered
 * delay: a receiver may slow us down, but neither make us hammer it sooner
 * than the schedule nor park the delivery indefinitely.
 */
export function nextRetry(
  schedule: readonly number[],
  attemptsMade: number,
  random: () => number,
  retryAfterMs?: number,
): RetryDecision {
  if (!Number.isSafeInteger(attemptsMade) || attemptsMade < 1) {
    throw new RangeError(`attemptsMade must be a positive integer, not ${attemptsMade}`);
  }
  const scheduled = schedule[attemptsMade - 1];
  if (scheduled === undefined) return { kind: "exhausted" };

  const delay = jittered(scheduled, random());
  if (retryAfterMs === undefined || Number.isNaN(retryAfterMs)) return { kind: "retry", delayMs: delay };
  return { kind: "retry", delayMs: Math.min(Math.max(Math.round(retryAfterMs), delay), 2 * delay) };
}

// Whole milliseconds, kept inside [0.8, 1.2] × scheduled even after rounding. The bounds multiply before
// dividing so that an exact bound stays exact (0.8 × 7 is 5.6000000000000005 in floating point).
function jittered(scheduled: number, draw: number): number {
  const low = Math.ceil((scheduled * (100 - RETRY_JITTER_PERCENT)) / 100);
  const high = Math.floor((scheduled * (100 + RETRY_JITTER_PERCENT)) / 100);
  return Math.min(Math.max(Math.round(low + (high - low) * draw), low), high);
}

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
const MONTH = MONTHS.join("|");
const DAY = "Mon|Tue|Wed|Thu|Fri|Sat|Sun";
const LONG_DAY = "Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday";
// The three HTTP-date forms RFC 9110 §5.6.7 tells recipients to accept: IMF-fixdate, then the obsolete RFC 850 and asctime forms.
const IMF_FIXDATE = new RegExp(`^(?:${DAY}), (\\d{2}) (${MONTH}) (\\d{4}) (\\d{2}):(\\d{2}):(\\d{2}) GMT$`);
const RFC850_DATE = new RegExp(`^(?:${LONG_DAY}), (\\d{2})-(${MONTH})-(\\d{2}) (\\d{2}):(\\d{2}):(\\d{2}) GMT$`);
const ASCTIME_DATE = new RegExp(`^(?:${DAY}) (${MONTH}) ([ \\d]\\d) (\\d{2}):(\\d{2}):(\\d{2}) (\\d{4})$`);

/**
 * Reads a `Retry-After` value as milliseconds from `nowMs`: delta-seconds or
 * an HTTP-date (a date already past means 0). Anything else is undefined, so
 * a receiver's garbage is ignored rather than trusted. Date.parse is not used
 * because it accepts far more than HTTP-dates and reads asctime as local time.
 */
export function parseRetryAfter(value: string | undefined, nowMs: number): number | undefined {
  if (value === undefined) return undefined;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Math.min(Number(text) * 1000, Number.MAX_SAFE_INTEGER);
  const at = parseHttpDate(text, nowMs);
  return at === undefined ? undefined : Math.max(at - nowMs, 0);
}

function parseHttpDate(text: string, nowMs: number): number | undefined {
  let match = IMF_FIXDATE.exec(text);
  if (match) return utc(Number(match[3]), match[2], Number(match[1]), match[4], match[5], match[6]);
  match = RFC850_DATE.exec(text);
  if (match) {
    // RFC 9110: a two-digit year more than 50 years ahead means the most recent past year with those digits.
    let year = 2000 + Number(match[3]);
    if (year > new Date(nowMs).getUTCFullYear() + 50) year -= 100;
    return utc(year, match[2], Number(match[1]), match[4], match[5], match[6]);
  }
  match = ASCTIME_DATE.exec(text);
  if (match) return utc(Number(match[6]), match[1], Number(match[2]?.trim()), match[3], match[4], match[5]);
  return undefined;
}

function utc(
  year: number,
  monthName: string | undefined,
  day: number,
  hours: string | undefined,
  minutes: string | undefined,
  seconds: string | undefined,
): number | undefined {
  const month = MONTHS.indexOf(monthName ?? "");
  const [h, m, s] = [Number(hours), Number(minutes), Number(seconds)];
  // A leap second (60) is allowed by the grammar; treat it as the next second.
  if (month < 0 || day < 1 || h > 23 || m > 59 || s > 60) return undefined;
  // Date.UTC rolls 31 Feb over into March; such a date is invalid, not a different one.
  if (new Date(Date.UTC(year, month, day)).getUTCDate() !== day) return undefined;
  return Date.UTC(year, month, day, h, m, s);
}
