import { describe, expect, it } from "vitest";
import { SETTINGS } from "../src/config/settings.js";
import { nextRetry, parseRetryAfter, RETRY_JITTER_PERCENT, type RetryDecision } from "../src/domain/retry-schedule.js";

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;

/** `5s,5m,30m,2h,5h,10h,14h,20h,24h`, read through the real setting so a changed default shows up here. */
const DEFAULT_SCHEDULE = SETTINGS.retrySchedule.parse(SETTINGS.retrySchedule.default);

/** The largest double below 1: what `Math.random()` can return at most. */
const ALMOST_ONE = 1 - Number.EPSILON / 2;

const always =
  (value: number): (() => number) =>
  () =>
    value;

function delayOf(decision: RetryDecision): number {
  if (decision.kind !== "retry") throw new Error(`expected a retry, got ${decision.kind}`);
  return decision.delayMs;
}

/** A small seeded PRNG (mulberry32) so the property loop is reproducible. */
function seeded(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe("the default schedule", () => {
  it("is the documented one", () => {
    expect(DEFAULT_SCHEDULE).toStrictEqual([
      5 * SECOND,
      5 * MINUTE,
      30 * MINUTE,
      2 * HOUR,
      5 * HOUR,
      10 * HOUR,
      14 * HOUR,
      20 * HOUR,
      24 * HOUR,
    ]);
    expect(RETRY_JITTER_PERCENT).toBe(20);
  });

  it.each(DEFAULT_SCHEDULE.map((delay, i) => [i + 1, delay] as const))(
    "after failed attempt %i the retry comes %i ms later, give or take 20 percent",
    (attempts, delay) => {
      expect(delayOf(nextRetry(DEFAULT_SCHEDULE, attempts, always(0.5)))).toBe(delay);
      expect(delayOf(nextRetry(DEFAULT_SCHEDULE, attempts, always(0)))).toBe(0.8 * delay);
      expect(delayOf(nextRetry(DEFAULT_SCHEDULE, attempts, always(ALMOST_ONE)))).toBe(1.2 * delay);
      for (const draw of [0.1, 0.25, 0.75, 0.9]) {
        const jittered = delayOf(nextRetry(DEFAULT_SCHEDULE, attempts, always(draw)));
        expect(jittered).toBeGreaterThanOrEqual(0.8 * delay);
        expect(jittered).toBeLessThanOrEqual(1.2 * delay);
        expect(Number.isInteger(jittered)).toBe(true);
      }
    },
  );

  it("the first retry comes about 5 s after the first attempt", () => {
    expect(nextRetry(DEFAULT_SCHEDULE, 1, always(0.5))).toStrictEqual({ kind: "retry", delayMs: 5 * SECOND });
  });

  it.each([10, 11, 1000])("after %i attempts the delivery is exhausted", (attempts) => {
    expect(nextRetry(DEFAULT_SCHEDULE, attempts, always(0.5))).toStrictEqual({ kind: "exhausted" });
  });
});

describe("nextRetry", () => {
  it("follows a custom schedule and exhausts after its last delay", () => {
    const schedule = [1000, 2000];
    expect(delayOf(nextRetry(schedule, 1, always(0.5)))).toBe(1000);
    expect(delayOf(nextRetry(schedule, 2, always(0.5)))).toBe(2000);
    expect(nextRetry(schedule, 3, always(0.5)).kind).toBe("exhausted");
    expect(nextRetry([], 1, always(0.5)).kind).toBe("exhausted");
  });

  it("keeps whole milliseconds within [0.8, 1.2] × delay when 0.8 × delay is fractional", () => {
    // 0.8 × 5003 = 4002.4 and 1.2 × 5003 = 6003.6: plain rounding would step outside.
    expect(delayOf(nextRetry([5003], 1, always(0)))).toBe(4003);
    expect(delayOf(nextRetry([5003], 1, always(ALMOST_ONE)))).toBe(6003);
  });

  it.each([0, -1, 1.5, Number.NaN])("refuses attemptsMade = %s", (attempts) => {
    expect(() => nextRetry(DEFAULT_SCHEDULE, attempts, always(0.5))).toThrow(RangeError);
  });

  // Attempt 2 of the default schedule: 5 min, so the window is [5 min, 10 min] with no jitter (draw 0.5).
  it.each([
    ["below the window: the schedule wins", 1 * SECOND, 5 * MINUTE],
    ["zero: the schedule wins", 0, 5 * MINUTE],
    ["negative: the schedule wins", -MINUTE, 5 * MINUTE],
    ["at the window's start", 5 * MINUTE, 5 * MINUTE],
    ["inside the window: honoured", 7.5 * MINUTE, 7.5 * MINUTE],
    ["at the window's end", 10 * MINUTE, 10 * MINUTE],
    ["above the window: capped at twice the delay", 3 * HOUR, 10 * MINUTE],
    ["infinite: capped at twice the delay", Number.POSITIVE_INFINITY, 10 * MINUTE],
    ["NaN: ignored", Number.NaN, 5 * MINUTE],
  ])("Retry-After %s", (_, retryAfter, expected) => {
    expect(nextRetry(DEFAULT_SCHEDULE, 2, always(0.5), retryAfter)).toStrictEqual({
      kind: "retry",
      delayMs: expected,
    });
  });

  it("bounds Retry-After by the jittered delay", () => {
    // Draw 0 makes the delay 4 min, so the window is [4 min, 8 min].
    expect(delayOf(nextRetry(DEFAULT_SCHEDULE, 2, always(0), 1 * SECOND))).toBe(4 * MINUTE);
    expect(delayOf(nextRetry(DEFAULT_SCHEDULE, 2, always(0), 6 * MINUTE))).toBe(6 * MINUTE);
    expect(delayOf(nextRetry(DEFAULT_SCHEDULE, 2, always(0), HOUR))).toBe(8 * MINUTE);
  });

  it("still exhausts with a Retry-After", () => {
    expect(nextRetry(DEFAULT_SCHEDULE, 10, always(0.5), MINUTE)).toStrictEqual({ kind: "exhausted" });
  });

  it("stays within bounds over thousands of random draws", () => {
    const random = seeded(20261128);
    for (let i = 0; i < 5000; i++) {
      const attempts = 1 + Math.floor(random() * (DEFAULT_SCHEDULE.length + 2));
      const retryAfter = random() < 0.5 ? undefined : Math.floor(random() * 3 * (DEFAULT_SCHEDULE.at(-1) ?? 0));
      const decision = nextRetry(DEFAULT_SCHEDULE, attempts, random, retryAfter);
      const scheduled = DEFAULT_SCHEDULE[attempts - 1];
      if (scheduled === undefined) {
        expect(decision.kind).toBe("exhausted");
        continue;
      }
      const delay = delayOf(decision);
      expect(Number.isInteger(delay)).toBe(true);
      expect(delay).toBeGreaterThanOrEqual(0.8 * scheduled);
      expect(delay).toBeLessThanOrEqual((retryAfter === undefined ? 1.2 : 2.4) * scheduled);
    }
  });
});

describe("parseRetryAfter", () => {
  const now = Date.UTC(2026, 10, 28, 23, 40, 10); // Sat, 28 Nov 2026 23:40:10 GMT

  it.each([
    ["120", 120 * SECOND],
    ["0", 0],
    [" 30 ", 30 * SECOND],
    ["86400", 86_400 * SECOND],
  ])("reads delta-seconds %j", (value, expected) => {
    expect(parseRetryAfter(value, now)).toBe(expected);
  });

  it.each([
    ["IMF-fixdate", "Sat, 28 Nov 2026 23:42:10 GMT", 2 * MINUTE],
    ["IMF-fixdate an hour ahead", "Sun, 29 Nov 2026 00:40:10 GMT", HOUR],
    ["obsolete RFC 850 date", "Saturday, 28-Nov-26 23:42:10 GMT", 2 * MINUTE],
    ["asctime date", "Sat Nov 28 23:42:10 2026", 2 * MINUTE],
    ["asctime date with a one-digit day", "Tue Dec  1 23:40:10 2026", 3 * 24 * HOUR],
    ["date in the past (means now)", "Sun, 01 Nov 2026 00:00:00 GMT", 0],
  ])("reads an HTTP-date: %s", (_, value, expected) => {
    expect(parseRetryAfter(value, now)).toBe(expected);
  });

  it.each([
    undefined,
    "",
    "   ",
    "soon",
    "-5",
    "+5",
    "1.5",
    "1e3",
    "0x10",
    "120s",
    "2026-11-28T23:42:10Z",
    "28 Nov 2026 23:42:10 GMT",
    "Sat, 28 Nov 2026 23:42:10 UTC",
    "Sat, 28 Nov 2026 23:42:10 +0000",
    "sat, 28 nov 2026 23:42:10 gmt",
    "Sat, 31 Feb 2026 23:42:10 GMT",
    "Sat, 28 Nov 2026 24:00:00 GMT",
    "Sat, 28 Nov 2026 23:60:00 GMT",
    "Sat, 00 Nov 2026 23:42:10 GMT",
    "Sat, 28 Nov 2026 23:42:10 GMT extra",
  ])("ignores %j", (value) => {
    expect(parseRetryAfter(value, now)).toBeUndefined();
  });

  it("feeds nextRetry: a 503 asking for 7 s after the first attempt waits 7 s", () => {
    expect(nextRetry(DEFAULT_SCHEDULE, 1, always(0.5), parseRetryAfter("7", now))).toStrictEqual({
      kind: "retry",
      delayMs: 7 * SECOND,
    });
    expect(nextRetry(DEFAULT_SCHEDULE, 1, always(0.5), parseRetryAfter("garbage", now))).toStrictEqual({
      kind: "retry",
      delayMs: 5 * SECOND,
    });
  });
});
