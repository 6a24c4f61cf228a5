// The drain comparison's rounds (bench/run.mjs, --drain-rounds): each round's ratios and their
// medians. Pure functions over the rounds' rates, so the report's arithmetic is tested on its own
// (packages/server/test/bench-tools.test.ts).
import { round } from "./stats.mjs";

/** a ÷ b to two places; undefined unless both are there and non-zero. */
export function ratio(a, b) {
  return a && b ? round(a / b, 2) : undefined;
}

/** The median of the values that are there (null and undefined left out); null when none is. */
export function median(values) {
  const sorted = values.filter((x) => x !== null && x !== undefined).sort((a, b) => a - b);
  if (sorted.length === 0) return null;
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : round((sorted[mid - 1] + sorted[mid]) / 2, 2);
}

/**
 * Each ratio of every round (null where the round lacks either side of it), their median over the
 * rounds that have it, and how many do (`samples`). A round is { drain, apiOnly, peer, loop,
 * ingestLoop?, e2e?, ingestLoopE2e?, raw? }: rates a second (`e2e` carehooks' best end-to-end rate,
 * `ingestLoopE2e` the reference end to end's), `raw` the raw POST rate measured just before the round (the
 * main run's round has none). `bestRaw` is the run's best raw rate, what every fan-out 1 `÷ raw`
 * divides by; the `…VsRoundRaw` ratios divide by the round's own instead, and the loop's ratios show
 * where the design with none of carehooks' features stood in the same round.
 */
export function roundRatios(rounds, bestRaw) {
  const of = (f) => {
    const each = rounds.map((r) => f(r) ?? null);
    return { median: median(each), samples: each.filter((x) => x !== null).length, each };
  };
  return {
    rounds: rounds.length,
    drain: of((r) => ratio(r.drain, bestRaw)),
    apiOnly: of((r) => ratio(r.apiOnly, bestRaw)),
    drainVsPeer: of((r) => ratio(r.drain, r.peer)),
    drainVsLoop: of((r) => ratio(r.drain, r.loop)),
    loop: of((r) => ratio(r.loop, bestRaw)),
    loopVsPeer: of((r) => ratio(r.loop, r.peer)),
    drainVsRoundRaw: of((r) => ratio(r.drain, r.raw)),
    loopVsRoundRaw: of((r) => ratio(r.loop, r.raw)),
    ...("ingestLoop" in (rounds[0] ?? {})
      ? {
          apiOnlyVsIngestLoop: of((r) => ratio(r.apiOnly, r.ingestLoop)),
          ingestLoop: of((r) => ratio(r.ingestLoop, bestRaw)),
        }
      : {}),
    ...("e2e" in (rounds[0] ?? {})
      ? {
          e2e: of((r) => ratio(r.e2e, bestRaw)),
          e2eVsReference: of((r) => ratio(r.e2e, r.ingestLoopE2e)),
          ingestLoopE2e: of((r) => ratio(r.ingestLoopE2e, bestRaw)),
        }
      : {}),
  };
}
