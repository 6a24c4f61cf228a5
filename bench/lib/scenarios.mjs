// The measurements themselves. Every time is ms on the machine's monotonic clock with sub-ms
// precision (stats.mjs's `now`), comparable across the bench process and its children.

import { randomBytes } from "node:crypto";
import { fileURLToPath } from "node:url";
import { benchIdentity } from "./payload.mjs";
import { cpuMeter, cpuSecondsOf, forkChild, selfCpuSeconds, stopChild, threadReport, threadTimes } from "./procs.mjs";
import { now, percentile, round, runPool, sleep, summarize } from "./stats.mjs";

const RAW_SENDER = fileURLToPath(new URL("./raw-sender.mjs", import.meta.url));

/** A fresh tag (the clinic_id of one measurement's creates), so the receiver ignores earlier phases' stragglers. */
/** With BENCH_THREADS=1: a thread meter that prints each thread's CPU over a scenario when stopped. */
function threadMeter(label) {
  if (!process.env.BENCH_THREADS) return () => {};
  const before = threadTimes();
  const t0 = now();
  return () => {
    const seconds = (now() - t0) / 1000;
    console.log(
      `threads during ${label} (${round(seconds, 2)} s):\n${threadReport(before, threadTimes(), seconds).join("\n")}`,
    );
  };
}

export function newTag(label) {
  return `cln_${label}_${randomBytes(4).toString("hex")}`;
}

/**
 * Baseline: raw undici POSTs of signed ~560-byte bodies to the receiver from a child process of its
 * own (raw-sender.mjs), `connections` per port kept in flight (one Pool per port, like the engine's
 * one agent with that many connections per origin).
 */
export async function rawPostRate({ receiver, ports, connections, seconds, warmupSeconds = 0.5, key, cpuSources }) {
  const tag = newTag("raw");
  await receiver.call("reset", { key, tag });
  const sender = await forkChild(RAW_SENDER, [], "raw-sender");
  try {
    await sender.call("start", { ports, connections, key, identity: benchIdentity(tag) });
    await sleep(warmupSeconds * 1000);
    await sender.call("measure");
    const meter = cpuMeter({ ...cpuSources, sender: () => cpuSecondsOf(sender.child.pid) });
    await sleep(seconds * 1000);
    const { requests, elapsedMs, errors } = await sender.call("stop");
    const { cpu } = meter();
    const check = await receiver.call("stats");
    return {
      rate: round((requests / elapsedMs) * 1000),
      requests,
      seconds: round(elapsedMs / 1000, 2),
      connections: connections * ports.length,
      errors,
      signaturesOk: check.sigOk,
      signaturesBad: check.sigBad,
      bodyBytes: check.avgBodyBytes,
      cpu,
    };
  } finally {
    await sender.call("close").catch(() => {});
    await stopChild(sender.child);
  }
}

/** CPU milliseconds each process spent per unit of work (event or delivery). */
function cpuMsPer(cpuSeconds, units) {
  if (!units) return undefined;
  return Object.fromEntries(Object.entries(cpuSeconds).map(([k, s]) => [k, round((s * 1000) / units, 2)]));
}

/** Best (highest `key`) of several results. */
export function best(runs, key = "rate") {
  return runs.reduce((a, b) => ((b?.[key] ?? -1) > (a?.[key] ?? -1) ? b : a), undefined);
}

/** Creates n appointments with bounded concurrency. */
export function createMany(api, n, concurrency, offset = 0, tag = undefined) {
  return runPool(n, concurrency, (i) => api.createAppointment(offset + i, tag));
}

/** Creates `events` appointments while no dispatcher runs: the API's cost alone. */
export async function apiOnlyCreates({ api, events, concurrency, cpuSources, offset, tag }) {
  const meter = cpuMeter({ ...cpuSources, bench: selfCpuSeconds });
  const threads = threadMeter("API-only creates");
  const t0 = now();
  const { results, errors } = await createMany(api, events, concurrency, offset, tag);
  const elapsed = now() - t0;
  const { cpu, cpuSeconds } = meter();
  threads();
  const apiLatency = summarize(results.map((r) => r.commit - r.sent));
  return {
    created: results.length,
    createErrors: errors.length,
    firstError: errors[0],
    rate: round(results.length / (elapsed / 1000)),
    apiLatencyMs: { p50: apiLatency.p50, p99: apiLatency.p99 },
    cpu,
    cpuMsPerEvent: cpuMsPer(cpuSeconds, results.length),
  };
}

/** Creates `warm` events and waits for their deliveries, to warm JITs, pools and caches. */
export async function warmUp({ api, receiver, key, events, fanout, concurrency, timeoutMs }) {
  const tag = newTag("warm");
  await receiver.call("reset", { key, tag });
  const { results, errors } = await createMany(api, events, concurrency, 900_000_000, tag);
  const stats = await receiver.call("waitFor", { count: results.length * fanout, timeoutMs });
  if (errors.length > 0 || stats.timedOut) {
    throw new Error(
      `warm-up failed: ${errors.length} create errors (${errors[0] ?? ""}); ${stats.deliveries}/${results.length * fanout} delivered`,
    );
  }
}

/**
 * End to end: N creates with bounded concurrency, then wait until the receiver has every delivery
 * (de-duplicated on port, path and webhook-id). Rates are measured from the first create request.
 */
export async function endToEnd({ api, receiver, key, events, fanout, concurrency, timeoutMs, cpuSources, offset }) {
  const tag = newTag("e2e");
  await receiver.call("reset", { key, tag });
  const meter = cpuMeter({ ...cpuSources, bench: selfCpuSeconds });
  const threads = threadMeter(`end to end, fan-out ${fanout}`);
  const t0 = now();
  const { results, errors } = await createMany(api, events, concurrency, offset, tag);
  const tCreated = now();
  const expected = results.length * fanout;
  const stats = await receiver.call("waitFor", { count: expected, timeoutMs });
  const { cpu, cpuSeconds } = meter();
  threads();
  const end = stats.last ?? now();
  const seconds = (end - t0) / 1000;
  const eventsDone = stats.deliveries / fanout;
  const apiLatency = summarize(results.map((r) => r.commit - r.sent));
  return {
    events: results.length,
    fanout,
    createErrors: errors.length,
    firstError: errors[0],
    createRate: round(results.length / ((tCreated - t0) / 1000)),
    rate: round(eventsDone / seconds), // events fully delivered per second, first create → last receipt
    deliveryRate: round(stats.deliveries / seconds),
    seconds: round(seconds, 2),
    tailAfterLastCreateMs: round(end - tCreated),
    delivered: stats.deliveries,
    expected,
    complete: !stats.timedOut && stats.deliveries >= expected,
    duplicates: stats.duplicates,
    strays: stats.stray,
    signaturesOk: stats.sigOk,
    signaturesBad: stats.sigBad,
    unsigned: stats.unsigned,
    bodyBytes: stats.avgBodyBytes,
    apiLatencyMs: { p50: apiLatency.p50, p99: apiLatency.p99 },
    cpu,
    cpuMsPerEvent: cpuMsPer(cpuSeconds, eventsDone),
  };
}

/**
 * A warm-up of `warm` events (fan-out 1), then `runs` end-to-end runs of `events`, the r-th creating
 * from `offset` + r × 100 000; `before(r)` runs before each and `after(run)` after (to log, or to
 * throw on a run that must not count). Resolves to { runs, best } (best: the highest rate).
 */
export async function warmedEndToEndRuns({
  api,
  receiver,
  key,
  warm,
  runs,
  events,
  concurrency,
  timeoutMs,
  cpuSources,
  offset = 0,
  before = () => {},
  after = () => {},
}) {
  await warmUp({ api, receiver, key, events: warm, fanout: 1, concurrency, timeoutMs });
  const results = [];
  for (let r = 0; r < runs; r++) {
    before(r);
    const run = await endToEnd({
      api,
      receiver,
      key,
      events,
      fanout: 1,
      concurrency,
      timeoutMs,
      cpuSources: cpuSources(),
      offset: offset + r * 100_000,
    });
    after(run);
    results.push(run);
  }
  return { runs: results, best: best(results) };
}

/**
 * Backlog drain: `events` deliveries are already pending when the dispatcher starts (`startDispatcher`);
 * the rate is measured from the first to the last receipt, so it is the dispatcher alone.
 */
export async function drain({ receiver, key, tag, expected, startDispatcher, timeoutMs, cpuSources }) {
  await receiver.call("reset", { key, tag });
  const tStart = now();
  const sources = await startDispatcher();
  const meter = cpuMeter({ ...cpuSources, ...sources, bench: selfCpuSeconds });
  const threads = threadMeter("the drain");
  const stats = await receiver.call("waitFor", { count: expected, timeoutMs });
  const { cpu, cpuSeconds } = meter();
  threads();
  const span = (stats.last - stats.first) / 1000;
  const receivedAt = (await receiver.call("receipts")).map(([, t]) => t);
  return {
    expected,
    delivered: stats.deliveries,
    complete: !stats.timedOut && stats.deliveries >= expected,
    rate: round((stats.deliveries - 1) / span),
    seconds: round(span, 2),
    startToFirstReceiptMs: round(stats.first - tStart),
    connections: stats.connections,
    duplicates: stats.duplicates,
    strays: stats.stray,
    signaturesOk: stats.sigOk,
    signaturesBad: stats.sigBad,
    unsigned: stats.unsigned,
    cpu,
    cpuMsPerDelivery: cpuMsPer(cpuSeconds, stats.deliveries),
    secondHalfRate: secondHalfRate(receivedAt),
    secondHalfArrivals: arrivalPattern(receivedAt),
    perQuarterSecond: ratesByWindow(receivedAt, stats.first, 250),
  };
}

/**
 * Receipts a second over the second half of them: the drain once the process has warmed up (a
 * fresh process runs its first second or so in V8's baseline tiers, at a third of its later rate).
 */
function secondHalfRate(times) {
  const sorted = [...times].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  const span = (sorted[sorted.length - 1] - sorted[mid]) / 1000;
  return span > 0 ? round((sorted.length - 1 - mid) / span) : undefined;
}

/** Gaps between receipts longer than this end a burst: several times a receipt's own handling. */
const BURST_GAP_MS = 0.15;

/**
 * How the second half's requests reached the receiver, from its receipt times (ms): in bursts
 * separated by gaps of over BURST_GAP_MS. `gapShare` is the part of the span in such gaps (an upper
 * bound on the receiver's idle time: a gap also holds the end of its last receipt's handling, and
 * any wait of the receiver for a core), `meanBurst` the receipts per burst, `gapP50Us` and
 * `gapP90Us` the gaps between consecutive receipts. A sender whose next requests go out while the
 * receiver still works through the last ones shows longer bursts and a smaller share in gaps.
 */
export function arrivalPattern(times) {
  const sorted = [...times].sort((a, b) => a - b).slice(Math.floor(times.length / 2));
  if (sorted.length < 3) return undefined;
  const gaps = sorted.slice(1).map((t, i) => t - sorted[i]);
  const span = sorted[sorted.length - 1] - sorted[0];
  if (!(span > 0)) return undefined;
  const long = gaps.filter((gap) => gap > BURST_GAP_MS);
  const ordered = [...gaps].sort((a, b) => a - b);
  return {
    gapShare: round(long.reduce((sum, gap) => sum + gap, 0) / span, 2),
    meanBurst: round(sorted.length / (long.length + 1), 1),
    gapP50Us: Math.round(percentile(ordered, 50) * 1000),
    gapP90Us: Math.round(percentile(ordered, 90) * 1000),
  };
}

/** Receipts a second in consecutive windows from `first`: how a cold process warms up during a drain. */
function ratesByWindow(times, first, windowMs) {
  const counts = [];
  for (const t of times) {
    const i = Math.floor((t - first) / windowMs);
    counts[i] = (counts[i] ?? 0) + 1;
  }
  return Array.from(counts, (n) => Math.round(((n ?? 0) * 1000) / windowMs));
}

/**
 * Latency at a steady rate: creates paced at `rate`/s (open loop, at most `maxOutstanding` in flight)
 * for `duration` s; for each, commit = when the create's response arrived; latency = first receipt at
 * the receiver − commit, matched on data.appointment_id.
 */
export async function steadyLatency({
  api,
  receiver,
  key,
  rate,
  duration,
  maxOutstanding = 256,
  waitMs,
  cpuSources,
  offset,
}) {
  const tag = newTag(`steady${rate}`);
  await receiver.call("reset", { key, tag });
  const total = Math.round(rate * duration);
  const records = [];
  const errors = [];
  let outstanding = 0;
  let maxSeen = 0;
  let blocked = 0;
  const inflight = new Set();
  const meter = cpuMeter({ ...cpuSources, bench: selfCpuSeconds });
  const t0 = now();
  let i = 0;
  const deadline = t0 + duration * 1000;
  // Open loop for `duration` seconds: when the API cannot keep up, fewer creates are sent (not a longer run).
  while (i < total && now() < deadline) {
    const due = Math.min(total, Math.floor(((now() - t0) / 1000) * rate) + 1);
    while (i < due) {
      if (outstanding >= maxOutstanding) {
        blocked += 1;
        break;
      }
      const n = i++;
      outstanding += 1;
      maxSeen = Math.max(maxSeen, outstanding);
      const p = api
        .createAppointment(offset + n, tag)
        .then((r) => records.push(r))
        .catch((error) => errors.push(String(error?.message ?? error)))
        .finally(() => {
          outstanding -= 1;
          inflight.delete(p);
        });
      inflight.add(p);
    }
    await sleep(1);
  }
  const tLastSend = now();
  await Promise.all([...inflight]);
  const tLastCommit = now();
  const stats = await receiver.call("waitFor", { count: records.length, timeoutMs: waitMs });
  const { cpu, cpuSeconds } = meter();
  const receipts = new Map(await receiver.call("receipts"));
  const latencies = [];
  let missing = 0;
  for (const r of records) {
    const t = receipts.get(r.id);
    if (t === undefined) missing += 1;
    else latencies.push(t - r.commit);
  }
  const lat = summarize(latencies);
  const apiLat = summarize(records.map((r) => r.commit - r.sent));
  // Per second of the run: whether a tail is one stall or spread evenly.
  const seconds = [];
  for (const r of records) {
    const t = receipts.get(r.id);
    if (t === undefined) continue;
    const s = Math.floor((r.sent - t0) / 1000);
    seconds[s] ??= { latency: [], api: [] };
    seconds[s].latency.push(t - r.commit);
    seconds[s].api.push(r.commit - r.sent);
  }
  const bySecond = [...seconds.entries()]
    .filter(([, bucket]) => bucket)
    .map(([second, bucket]) => {
      const l = summarize(bucket.latency);
      return { second, n: l.n, p50: l.p50, p99: l.p99, max: l.max, apiP99: summarize(bucket.api).p99 };
    });
  return {
    targetRate: rate,
    sent: i,
    notSent: total - i,
    achievedRate: round(i / ((tLastSend - t0) / 1000)),
    sustained: i >= total * 0.95 && errors.length === 0,
    commitRate: round(records.length / ((tLastCommit - t0) / 1000)),
    created: records.length,
    createErrors: errors.length,
    firstError: errors[0],
    arrived: latencies.length,
    missing,
    duplicates: stats.duplicates,
    strays: stats.stray,
    signaturesBad: stats.sigBad,
    maxOutstandingCreates: maxSeen,
    pacerBlocked: blocked,
    latencyMs: lat,
    receiptBeforeCommit: latencies.filter((x) => x < 0).length,
    over50ms: latencies.filter((x) => x > 50).length,
    over1s: latencies.filter((x) => x > 1000).length,
    apiLatencyMs: apiLat,
    bySecond,
    cpu,
    cpuMsPerEvent: cpuMsPer(cpuSeconds, latencies.length),
  };
}
