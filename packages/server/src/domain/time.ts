const DAY_MS = 86_400_000;
/** The last millisecond of year 9999: past it, and before 1970, toISOString's own form is used. */
const LAST_PLAIN_MS = 253_402_300_799_999;
const TWO_DIGITS = Array.from({ length: 60 }, (_, n) => String(n).padStart(2, "0"));

/** The day whose "YYYY-MM-DDT" `dayPrefix` holds: one Date per day, not one per time shown. */
let cachedDay = Number.NaN;
let dayPrefix = "";

/**
 * API resources show ISO-8601 UTC times to the second: `2026-11-28T23:40:10Z`.
 * Every create shows four and every page of a list many more: the date part is
 * formatted once per day, the time of day by arithmetic (the same text as
 * toISOString's, which is used as it is outside 1970–9999).
 */
export function isoTime(ms: number): string {
  // NaN fails the test too, and toISOString throws for it as before; so does anything not a number
  // (a driver's string), which the arithmetic would read differently from `new Date`.
  if (!(typeof ms === "number" && ms >= 0 && ms <= LAST_PLAIN_MS)) return `${new Date(ms).toISOString().slice(0, -5)}Z`;
  const day = Math.floor(ms / DAY_MS);
  if (day !== cachedDay) {
    dayPrefix = new Date(day * DAY_MS).toISOString().slice(0, 11);
    cachedDay = day;
  }
  const second = Math.floor((ms - day * DAY_MS) / 1000);
  const hours = TWO_DIGITS[Math.floor(second / 3600)] as string;
  const minutes = TWO_DIGITS[Math.floor(second / 60) % 60] as string;
  return `${dayPrefix}${hours}:${minutes}:${TWO_DIGITS[second % 60] as string}Z`;
}

export function isoTimeOrNull(ms: number | null): string | null {
  return ms === null ? null : isoTime(ms);
}

/** Parses an ISO-8601 time or Unix seconds given as a filter; undefined when it is neither. */
export function parseTimeFilter(text: string): number | undefined {
  if (/^\d{1,12}$/.test(text)) return Number(text) * 1000;
  const ms = Date.parse(text);
  return Number.isNaN(ms) || !/^\d{4}-\d{2}-\d{2}/.test(text) ? undefined : ms;
}
