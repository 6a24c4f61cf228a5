#!/usr/bin/env node
// carehooks benchmark harness. `node bench/run.mjs --help` for the options; bench/README.md and
// docs/benchmarks.md for what each figure means.
import { execFileSync } from "node:child_process";
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { Api, pgReachable, prepareDeployment, serveNodeFlags, setWebhookSettings } from "./lib/carehooks.mjs";
import { betterSqliteVersion, ROOT, undiciVersion } from "./lib/deps.mjs";
import { newSigningKey } from "./lib/payload.mjs";
import {
  bullmqDrain,
  graphileDrain,
  ingestLoopCreates,
  ingestLoopEndToEnd,
  peerNodeFlags,
  postgresLoopDrain,
  redisReachable,
  sqliteLoopDrain,
  stopPeers,
} from "./lib/peers.mjs";
import { cores, cpuSecondsOf, cpuSecondsOfComm, killAllNow, startReceiver, stopAll } from "./lib/procs.mjs";
import { ratio, roundRatios, targetsOf } from "./lib/rounds.mjs";
import {
  apiOnlyCreates,
  best,
  createMany,
  drain,
  endToEnd,
  newTag,
  rawPostRate,
  steadyLatency,
  warmedEndToEndRuns,
  warmUp,
} from "./lib/scenarios.mjs";
import { formatJson, now, round } from "./lib/stats.mjs";

const HELP = `Usage: node bench/run.mjs [options]

  --events N            events per end-to-end run and per backlog (default 3000)
  --fanout-events N     events in the fan-out 10 run (default events/3)
  --rate R              steady create rate of the latency scenario, per s (default 500)
  --duration S          seconds of the latency scenario (default 10)
  --low-rate R          also measure latency at this lighter rate for 5 s first, to separate
                        wake-up latency from overload (default 50; 0 skips)
  --latency-warmup S    seconds at --rate before the measured latency run, reported but not
                        counted (default 3; 0 skips)
  --concurrency C       concurrent create requests in throughput runs (default 16)
  --in-flight N         MAX_IN_FLIGHT_PER_ENDPOINT for the engine and connections of the
                        baseline (default $CAREHOOKS_MAX_IN_FLIGHT_PER_ENDPOINT or 10)
  --baseline-seconds S  length of one raw-POST baseline run (default 2)
  --repeat K            runs of the fan-out 1 end-to-end scenario, best kept (default 2)
  --drain-rounds N      rounds of the drain comparison on each database run, the main run's being
                        the first: carehooks' API-only run and drain on a fresh deployment, the
                        peer's and the reference loop's drains (and on SQLite the reference
                        ingest, and unless e2e is skipped carehooks' end to end on the drained
                        server and the reference end to end); the report adds the median of
                        each ratio (default 3; 1 keeps the main run's alone). They need the
                        peers: --no-peers, or --only without peers, leaves them out
  --warm-events N       creates before the measured end-to-end and API-only runs (default 2000):
                        the server's JIT, pools and caches settle first, as the raw baseline's
                        sender warms up for 0.5 s (~6 000 POSTs); the drain backlog includes them
  --only LIST           sqlite,postgres,peers (default all three; the baseline always runs)
  --no-peers            leave out the peer queues (BullMQ on Redis, graphile-worker on PostgreSQL)
                        and the references (peers/sqlite-loop.mjs, postgres-loop.mjs, ingest-loop.mjs)
  --skip LIST           any of e2e,fanout,drain,latency,paths
  --fanout-target T     ports (10 receiver ports) | paths (10 paths on one port) | both (default both)
  --ordering O          none | per_resource: every bench webhook's ordering (default none), to
                        measure what per-resource ordering costs (each event is its own resource)
  --filter JSON         an attribute filter on every bench webhook, to measure what filtering
                        costs at ingest (e.g. '{"data.action":{"$in":["created","modified"]}}',
                        which every bench event matches, so deliveries are unchanged)
  --workers N           PostgreSQL worker processes (default 2)
  --postgres URL        PostgreSQL server (default $CAREHOOKS_BENCH_POSTGRES_URL or
                        postgres://postgres@127.0.0.1:5432/test); a fresh schema bench_<random> is
                        created and dropped (graphile-worker gets one of its own, bench_gw_<random>)
  --redis URL           Redis server of the BullMQ peer (default $CAREHOOKS_BENCH_REDIS_URL or
                        redis://127.0.0.1:6379); a queue of its own, removed at the end
  --timeout S           longest wait for deliveries in one run (default 60)
  --out FILE            JSON results (default bench/results/latest.json)
  --env KEY=VALUE       extra environment for every carehooks process (repeatable), e.g.
                        --env CAREHOOKS_SQLITE_SYNCHRONOUS=NORMAL
  --node-flags=FLAGS    flags for node in every carehooks process (space-separated; after "=",
                        as they start with "--"), e.g. --node-flags=--interrupt-budget=67584
                        (Node 20's own, which serve lowers unless node is given one)
  --peer-node-flags=FLAGS
                        the same for the peer queues and the reference loops and ingest (default
                        none: Node's defaults, as a team would run them)
  --cpu-prof DIR        run every carehooks process with node --cpu-prof, profiles into DIR
  --sql-profile DIR     time every SQLite statement in carehooks processes, DIR/sql-<pid>.json
`;

const { values: opt } = parseArgs({
  options: {
    events: { type: "string", default: "3000" },
    "fanout-events": { type: "string" },
    rate: { type: "string", default: "500" },
    duration: { type: "string", default: "10" },
    "low-rate": { type: "string", default: "50" },
    "latency-warmup": { type: "string", default: "3" },
    "warm-events": { type: "string", default: "2000" },
    concurrency: { type: "string", default: "16" },
    "in-flight": { type: "string", default: process.env.CAREHOOKS_MAX_IN_FLIGHT_PER_ENDPOINT ?? "10" },
    "baseline-seconds": { type: "string", default: "2" },
    repeat: { type: "string", default: "2" },
    "drain-rounds": { type: "string", default: "3" },
    only: { type: "string", default: "sqlite,postgres,peers" },
    "no-peers": { type: "boolean", default: false },
    skip: { type: "string", default: "" },
    "fanout-target": { type: "string", default: "both" },
    ordering: { type: "string", default: "none" },
    filter: { type: "string" },
    workers: { type: "string", default: "2" },
    postgres: {
      type: "string",
      default: process.env.CAREHOOKS_BENCH_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/test",
    },
    redis: { type: "string", default: process.env.CAREHOOKS_BENCH_REDIS_URL ?? "redis://127.0.0.1:6379" },
    timeout: { type: "string", default: "60" },
    out: { type: "string", default: path.join(ROOT, "bench/results/latest.json") },
    env: { type: "string", multiple: true, default: [] },
    "node-flags": { type: "string" },
    "peer-node-flags": { type: "string" },
    "cpu-prof": { type: "string" },
    "sql-profile": { type: "string" },
    help: { type: "boolean", default: false },
  },
});
if (opt.help) {
  process.stdout.write(HELP);
  process.exit(0);
}

const int = (name, min = 1) => {
  const v = Number(opt[name]);
  if (!Number.isInteger(v) || v < min) {
    process.stderr.write(`--${name} must be an integer ≥ ${min}\n`);
    process.exit(2);
  }
  return v;
};
const O = {
  events: int("events", 10),
  fanoutEvents: opt["fanout-events"] ? int("fanout-events", 10) : Math.max(10, Math.ceil(Number(opt.events) / 3)),
  rate: int("rate"),
  duration: int("duration"),
  lowRate: int("low-rate", 0),
  latencyWarmup: int("latency-warmup", 0),
  warmEvents: int("warm-events", 1),
  concurrency: int("concurrency"),
  inFlight: int("in-flight"),
  baselineSeconds: Number(opt["baseline-seconds"]) || 2,
  repeat: int("repeat"),
  drainRounds: int("drain-rounds"),
  workers: int("workers"),
  timeoutMs: int("timeout") * 1000,
  only: new Set(
    opt.only
      .split(",")
      .map((s) => s.trim())
      .filter(Boolean),
  ),
  skip: new Set(
    opt.skip
      .split(",")
      .map((s) => s.trim())
      .filter(Boolean),
  ),
  fanoutTarget: opt["fanout-target"],
  ordering: opt.ordering,
  filter: opt.filter === undefined ? undefined : JSON.parse(opt.filter),
  postgres: opt.postgres,
  redis: opt.redis,
  out: path.resolve(opt.out),
  env: Object.fromEntries(
    opt.env.map((pair) => {
      const at = pair.indexOf("=");
      if (at < 1) {
        process.stderr.write(`--env ${pair}: expected KEY=VALUE\n`);
        process.exit(2);
      }
      return [pair.slice(0, at), pair.slice(at + 1)];
    }),
  ),
};
if (!["none", "per_resource"].includes(O.ordering)) {
  process.stderr.write(`--ordering ${O.ordering}: expected none or per_resource\n`);
  process.exit(2);
}
setWebhookSettings({ ordering: O.ordering, ...(O.filter === undefined ? {} : { filter: O.filter }) });
if (opt["no-peers"]) O.only.delete("peers");
if (!["ports", "paths", "both"].includes(O.fanoutTarget)) {
  process.stderr.write("--fanout-target must be ports, paths or both\n");
  process.exit(2);
}
/** Space-separated node flags as given after "=". */
const flagList = (text = "") => text.split(/\s+/).filter(Boolean);
serveNodeFlags.push(...flagList(opt["node-flags"]));
peerNodeFlags.push(...flagList(opt["peer-node-flags"]));
if (opt["cpu-prof"]) {
  const dir = path.resolve(opt["cpu-prof"]);
  mkdirSync(dir, { recursive: true });
  serveNodeFlags.push("--cpu-prof", `--cpu-prof-dir=${dir}`);
}
if (opt["sql-profile"]) {
  const dir = path.resolve(opt["sql-profile"]);
  mkdirSync(dir, { recursive: true });
  process.env.CAREHOOKS_BENCH_SQL_PROFILE_DIR = dir;
  serveNodeFlags.push("--import", new URL("./lib/sql-timing.mjs", import.meta.url).href);
}
const FANOUT = 10;
const LOW_RATE_SECONDS = 5;

/** WARM_EVENTS events created and delivered, at fan-out 1. */
function warmUpOnce({ api, receiver, key }) {
  return warmUp({
    api,
    receiver,
    key,
    events: WARM_EVENTS,
    fanout: 1,
    concurrency: O.concurrency,
    timeoutMs: O.timeoutMs,
  });
}

/**
 * The latency scenarios on a running deployment (poll interval 10 s): a probe at --low-rate, then
 * --latency-warmup seconds at --rate (reported, not counted: JIT, caches and connection pools
 * settle), then the measured --duration seconds at --rate. Each waits for its own deliveries.
 */
async function latencyScenarios(label, { api, receiver, key, cpuSources }) {
  const out = {};
  await warmUpOnce({ api, receiver, key });
  const phases = [
    ["latencyLow", O.lowRate, LOW_RATE_SECONDS, 5_000_000],
    ["latencyWarmup", O.rate, O.latencyWarmup, 3_000_000],
    ["latency", O.rate, O.duration, 4_000_000],
  ];
  for (const [name, rate, duration, offset] of phases) {
    if (rate <= 0 || duration <= 0) continue;
    log(
      `${label}: latency at ${rate}/s for ${duration} s (POLL_INTERVAL=10s)${name === "latencyWarmup" ? ", warm-up" : ""}`,
    );
    out[name] = await steadyLatency({
      api,
      receiver,
      key,
      rate,
      duration,
      waitMs: 15_000,
      cpuSources: cpuSources(),
      offset,
    });
    const l = out[name].latencyMs;
    log(`${label}: latency p50 ${l.p50} p99 ${l.p99} max ${l.max} ms; ${out[name].arrived}/${out[name].created}`);
  }
  return out;
}

/**
 * Creates before a measured run. A fresh server runs its first thousands of requests in V8's
 * baseline tiers: after 200 creates, the API-only rate was 55–65 % of the rate after 3 000, and
 * the second end-to-end run 1.8 × the first. The raw baseline is measured warm (0.5 s first).
 */
const WARM_EVENTS = O.warmEvents;

// ---- cleanup on every exit path ----
const deployments = new Set();
let receiver;
let cleaningUp = false;
async function cleanup() {
  if (cleaningUp) return;
  cleaningUp = true;
  const timer = setTimeout(() => killAllNow(), 20_000); // past a peer's close grace (10 s)
  try {
    await Promise.allSettled([...deployments].map((d) => d.cleanup()).concat(stopPeers()));
    if (receiver) await Promise.race([receiver.call("close"), new Promise((r) => setTimeout(r, 2000))]);
    await stopAll(3000);
  } finally {
    clearTimeout(timer);
  }
}
for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, () => {
    log(`${signal}: cleaning up`);
    cleanup().finally(() => process.exit(130));
  });
}
process.on("exit", () => killAllNow());

function log(message) {
  const t = new Date().toISOString().slice(11, 19);
  process.stderr.write(`[bench ${t}] ${message}\n`);
}

async function tracked(deployment) {
  deployments.add(deployment);
  return deployment;
}

/** Stops a deployment and files the error-level log lines of its processes under `result.serverErrors`. */
async function release(deployment, result) {
  await deployment.cleanup();
  deployments.delete(deployment);
  if (result && deployment.errors.length > 0) {
    result.serverErrors = [...(result.serverErrors ?? []), ...deployment.errors];
    const total = deployment.errors.reduce((a, e) => a + e.count, 0);
    log(`${deployment.kind}: ${total} error-level log lines from carehooks processes (see serverErrors in the JSON)`);
    for (const e of deployment.errors) log(`  ${e.process}: ${e.lines[0]?.slice(0, 300)}`);
  }
}

// ---- the machine ----
function machine() {
  const loadavg = os.loadavg().map((x) => round(x, 2));
  let nproc = cores;
  try {
    nproc = Number(execFileSync("nproc").toString().trim());
  } catch {}
  let version = "unknown";
  try {
    version = JSON.parse(readFileSync(path.join(ROOT, "packages/server/package.json"), "utf8")).version;
  } catch {}
  let commit = "unknown";
  let uncommitted = [];
  try {
    commit = execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: ROOT }).toString().trim();
    // the figures describe the working tree: say which server and bench files differ from the commit
    // (the results themselves aside)
    uncommitted = execFileSync(
      "git",
      ["status", "--porcelain", "--", "packages/server/src", "packages/server/migrations", "bench", ":!bench/results"],
      {
        cwd: ROOT,
      },
    )
      .toString()
      .split("\n")
      .filter(Boolean)
      .map((line) => line.slice(3));
  } catch {}
  let distBuiltAt;
  try {
    const files = readdirSync(path.join(ROOT, "packages/server/dist"), { recursive: true });
    const newest = Math.max(...files.map((f) => statSync(path.join(ROOT, "packages/server/dist", f)).mtimeMs));
    distBuiltAt = new Date(newest).toISOString();
  } catch {}
  // sources edited after their build: the figures do not include those edits. `tsc -b` leaves an output
  // whose content did not change untouched but records every build in the build info, so a source older
  // than either was built as it is.
  const staleDist = [];
  try {
    const src = path.join(ROOT, "packages/server/src");
    let checkedAt = 0;
    try {
      checkedAt = statSync(path.join(ROOT, "packages/server/tsconfig.tsbuildinfo")).mtimeMs;
    } catch {}
    for (const f of readdirSync(src, { recursive: true })) {
      if (!f.endsWith(".ts")) continue;
      const built = path.join(ROOT, "packages/server/dist", f.replace(/\.ts$/, ".js"));
      try {
        const builtAt = Math.max(statSync(built).mtimeMs, checkedAt);
        if (statSync(path.join(src, f)).mtimeMs > builtAt) staleDist.push(f);
      } catch {
        staleDist.push(f);
      }
    }
  } catch {}
  return {
    nproc,
    cpuModel: os.cpus()[0]?.model,
    memoryGiB: round(os.totalmem() / 2 ** 30, 1),
    node: process.version,
    undici: undiciVersion,
    platform: `${os.type()} ${os.release()}`,
    loadavgAtStart: loadavg,
    carehooks: version,
    commit,
    uncommitted,
    distBuiltAt,
    staleDist,
  };
}

// ---- suites ----
function commonEnv() {
  return { CAREHOOKS_MAX_IN_FLIGHT_PER_ENDPOINT: String(O.inFlight), ...O.env };
}

const pid = (proc) => () => cpuSecondsOf(proc.child.pid);

async function fanoutRuns({ dep, port, receiverSources, otherSources, clientIndex, label }) {
  const out = {};
  const targets = O.fanoutTarget === "both" ? ["ports", "paths"] : [O.fanoutTarget];
  for (const [k, target] of targets.entries()) {
    if (target === "paths" && O.skip.has("paths")) continue;
    const api = new Api(port, 64);
    await api.login(dep.clients[clientIndex + k]);
    const key = newSigningKey();
    for (let i = 0; i < FANOUT; i++) {
      const p = target === "ports" ? receiver.ports[i] : receiver.ports[0];
      await api.createWebhook(`http://127.0.0.1:${p}/hook/${label}-fanout-${target}-${i}`, key);
    }
    log(`${label}: fan-out ${FANOUT} (${target}): warm-up, then ${O.fanoutEvents} events`);
    await warmUp({
      api,
      receiver,
      key,
      events: 50,
      fanout: FANOUT,
      concurrency: O.concurrency,
      timeoutMs: O.timeoutMs,
    });
    out[target] = await endToEnd({
      api,
      receiver,
      key,
      events: O.fanoutEvents,
      fanout: FANOUT,
      concurrency: O.concurrency,
      timeoutMs: O.timeoutMs,
      cpuSources: { ...otherSources, ...receiverSources },
      offset: 2_000_000 + k * 100_000,
    });
    log(`${label}: fan-out ${target}: ${out[target].deliveryRate} deliveries/s, ${out[target].rate} events/s`);
    await api.close();
  }
  return out;
}

/**
 * The server's counters since it started (its /metrics): the write-ahead log's (for a drain, how
 * many commits and fsyncs its deliveries took) and the dispatcher's batches (how full its claims
 * and completion writes ran).
 */
async function serverCounters(port) {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  return {
    log: countsOf(text, "carehooks_sqlite_wal"),
    batches: countsOf(text, "carehooks_dispatcher_batches_total"),
    creates: countsOf(text, "carehooks_create_batches"),
  };
}

/**
 * Each worker's claims and completion writes (counts of batches and of what they carried), logged; read
 * once the receiver has everything, so the last completion write may not be counted. Undefined, with a
 * note, when a worker cannot say: the drain's figures stand without them.
 */
async function workerBatches(label, workers) {
  let batches;
  try {
    batches = await Promise.all(workers.map(async (w) => (await serverCounters(w.port)).batches));
  } catch (error) {
    log(`${label}: could not read the workers' batch counts (${error.message})`);
    return undefined;
  }
  for (const [i, counts] of batches.entries()) logBatches(`${label}: worker ${i + 1}`, counts);
  return batches;
}

/** n ÷ of to one decimal: how full batches ran. */
const perBatch = (n, of) => round(n / of, 1);

/** A dispatcher's claims and completion writes so far, and how full they ran, logged (nothing when it had none). */
function logBatches(label, { claims, claimed, completions, completed }) {
  if (!(claims > 0 && completions > 0)) return;
  log(
    `${label}: ${claims} claims (${perBatch(claimed, claims)} deliveries each), ${completions} completion writes (${perBatch(completed, completions)} outcomes each)`,
  );
}

/** A family's samples by their `kind` label, from /metrics text. */
function countsOf(text, family) {
  const counts = {};
  for (const [, kind, value] of text.matchAll(new RegExp(`^${family}\\{kind="(\\w+)"\\} (\\d+)`, "gm")))
    counts[kind] = Number(value);
  return counts;
}

/**
 * On a fresh SQLite deployment: a backlog written by `serve --role api` (its warm-up creates, then
 * the API-only run), then drained by `serve` (role all, 10 s poll interval), which is left running.
 */
async function sqliteBacklogAndDrain(dep, key, receiverSources, round = "") {
  const apiOnly = await dep.serve("api", `sqlite-api${round}`);
  let apiCounters;
  const api = new Api(apiOnly.port, 64);
  await api.login(dep.clients[0]);
  await api.createWebhook(`http://127.0.0.1:${receiver.ports[0]}/hook/sqlite-drain`, key);
  let srv;
  const drained = await backlogThenDrain({
    label: `sqlite${round}`,
    api,
    key,
    apiSources: { server: pid(apiOnly) },
    drainSources: receiverSources,
    afterCreates: async () => {
      await api.close();
      apiCounters = await serverCounters(apiOnly.port);
      await dep.stop(apiOnly);
    },
    startDispatcher: async () => {
      srv = await dep.serve("all", `sqlite-all-10s${round}`);
      return { server: pid(srv) };
    },
  });
  const counters = await serverCounters(srv.port);
  logBatches(`sqlite${round}`, counters.batches);
  const { batches: createBatches, creates } = apiCounters.creates;
  if (createBatches > 0) {
    const { commits, fsyncs } = apiCounters.log;
    log(
      `sqlite${round}: the API process wrote ${creates} creates in ${createBatches} batches (${perBatch(creates, createBatches)} each), ${commits} commits, ${fsyncs} fsyncs`,
    );
  }
  return { srv, drain: { ...drained, ...counters, api: apiCounters } };
}

/**
 * A backlog made by the warm-up creates and the API-only run (no dispatcher running), then
 * drained by what `startDispatcher` starts; `afterCreates` runs between the two.
 */
async function backlogThenDrain({ label, api, key, apiSources, drainSources, afterCreates, startDispatcher }) {
  const tag = newTag("drain");
  await createMany(api, WARM_EVENTS, O.concurrency, 800_000_000, tag); // warms the API; delivered with the backlog
  log(`${label}: ${O.events} creates with no dispatcher running (API only)`);
  const apiOnlyRun = await apiOnlyCreates({
    api,
    events: O.events,
    concurrency: O.concurrency,
    cpuSources: apiSources,
    offset: 3_000_000,
    tag,
  });
  await afterCreates?.();
  log(`${label}: API-only create rate ${apiOnlyRun.rate}/s; draining the backlog`);
  const d = await drain({
    receiver,
    key,
    tag,
    expected: apiOnlyRun.created + WARM_EVENTS,
    timeoutMs: O.timeoutMs,
    cpuSources: drainSources,
    startDispatcher,
  });
  log(`${label}: drain ${d.rate} deliveries/s`);
  return { ...d, apiOnlyCreateRate: apiOnlyRun.rate, apiOnly: apiOnlyRun };
}

async function sqliteSuite(result, receiverSources) {
  // Deployment 1: one `serve` (role all), default poll interval: throughput at fan-out 1 and 10.
  {
    log("sqlite: preparing deployment (role all)");
    const dep = await tracked(
      await prepareDeployment({
        kind: "sqlite",
        extraEnv: commonEnv(),
        businesses: ["Bench", "Bench fan-out ports", "Bench fan-out paths"],
      }),
    );
    try {
      const srv = await dep.serve("all", "sqlite-all");
      const sources = { server: pid(srv), ...receiverSources };
      const api = new Api(srv.port, 64);
      await api.login(dep.clients[0]);
      const key = newSigningKey();
      await api.createWebhook(`http://127.0.0.1:${receiver.ports[0]}/hook/sqlite-f1`, key);
      const e2e = await warmUpAndEndToEnd({ label: "sqlite", api, receiver, key, cpuSources: () => sources });
      if (e2e) {
        result.e2e = e2e;
        // A diagnostic: the run's figures stand without it.
        await serverCounters(srv.port).then(
          (counters) => logBatches("sqlite, warm-up and end to end", counters.batches),
          (error) => log(`sqlite: could not read the end-to-end runs' batch counts (${error.message})`),
        );
      }
      await api.close();
      if (!O.skip.has("fanout")) {
        result.fanout = await fanoutRuns({
          dep,
          port: srv.port,
          receiverSources,
          otherSources: { server: pid(srv) },
          clientIndex: 1,
          label: "sqlite",
        });
      }
    } finally {
      await release(dep, result);
    }
  }
  // Deployment 2: backlog written by `serve --role api`, drained by `serve` (role all), which then
  // runs the latency scenario with a 10 s poll interval.
  if (!O.skip.has("drain") || !O.skip.has("latency")) {
    log("sqlite: preparing deployment (api only, then role all with POLL_INTERVAL=10s)");
    const dep = await tracked(
      await prepareDeployment({ kind: "sqlite", extraEnv: { ...commonEnv(), CAREHOOKS_POLL_INTERVAL: "10s" } }),
    );
    try {
      const key = newSigningKey();
      let srv;
      if (!O.skip.has("drain")) {
        const run = await sqliteBacklogAndDrain(dep, key, receiverSources);
        srv = run.srv;
        result.drain = run.drain;
      } else {
        srv = await dep.serve("all", "sqlite-all-10s");
        const api = new Api(srv.port, 8);
        await api.login(dep.clients[0]);
        await api.createWebhook(`http://127.0.0.1:${receiver.ports[0]}/hook/sqlite-drain`, key);
        await api.close();
      }
      if (!O.skip.has("latency")) {
        const api = new Api(srv.port, 256);
        await api.login(dep.clients[0]);
        Object.assign(
          result,
          await latencyScenarios("sqlite", {
            api,
            receiver,
            key,
            cpuSources: () => ({ server: pid(srv), ...receiverSources }),
          }),
        );
        await api.close();
      }
    } finally {
      await release(dep, result);
    }
  }
}

async function postgresSuite(result, receiverSources) {
  log(`postgres: preparing schema, migrating (${O.workers} workers)`);
  const dep = await tracked(
    await prepareDeployment({
      kind: "postgres",
      pgBase: O.postgres,
      extraEnv: commonEnv(),
      businesses: ["Bench", "Bench fan-out ports", "Bench fan-out paths"],
    }),
  );
  result.schema = dep.schema;
  try {
    const apiSrv = await dep.serve("api", "pg-api");
    const api = new Api(apiSrv.port, 256);
    await api.login(dep.clients[0]);
    const key = newSigningKey();
    await api.createWebhook(`http://127.0.0.1:${receiver.ports[0]}/hook/pg-f1`, key);
    const base = { api: pid(apiSrv), postgres: () => cpuSecondsOfComm("postgres"), ...receiverSources };
    let workers = [];
    const workerSources = () => Object.fromEntries(workers.map((w, i) => [`worker${i + 1}`, pid(w)]));
    const startWorkers = async (envOverride = {}, suffix = "") => {
      workers = await Promise.all(
        Array.from({ length: O.workers }, (_, i) => dep.serve("worker", `pg-worker-${i + 1}${suffix}`, envOverride)),
      );
    };

    if (!O.skip.has("drain")) {
      result.drain = await backlogThenDrain({
        label: "postgres",
        api,
        key,
        apiSources: base,
        drainSources: base,
        startDispatcher: async () => {
          await startWorkers();
          return workerSources();
        },
      });
      result.drain.workers = await workerBatches("postgres", workers);
    } else {
      await startWorkers();
    }

    const e2e = await warmUpAndEndToEnd({
      label: "postgres",
      api,
      receiver,
      key,
      cpuSources: () => ({ ...base, ...workerSources() }),
    });
    if (e2e) result.e2e = e2e;

    if (!O.skip.has("fanout")) {
      result.fanout = await fanoutRuns({
        dep,
        port: apiSrv.port,
        receiverSources,
        otherSources: { api: pid(apiSrv), postgres: () => cpuSecondsOfComm("postgres"), ...workerSources() },
        clientIndex: 1,
        label: "postgres",
      });
    }

    if (!O.skip.has("latency")) {
      log("postgres: restarting workers with POLL_INTERVAL=10s");
      await Promise.all(workers.map((w) => dep.stop(w)));
      await startWorkers({ CAREHOOKS_POLL_INTERVAL: "10s" }, "-10s");
      Object.assign(
        result,
        await latencyScenarios("postgres", { api, receiver, key, cpuSources: () => ({ ...base, ...workerSources() }) }),
      );
    }
    await api.close();
  } finally {
    await release(dep, result);
  }
}

/**
 * The peer queues, each on its own store: the same backlog as carehooks' drain (--events plus the
 * warm-up's events) to the same receiver port, one worker process with the engine's per-endpoint cap
 * as its concurrency and connections. Skipped, and said so, when the store is unreachable.
 */
const PEERS = {
  bullmq: {
    label: "BullMQ",
    store: () => O.redis,
    reachable: () => redisReachable(O.redis),
    drain: (args) => bullmqDrain({ ...args, redis: O.redis }),
  },
  sqliteLoop: {
    label: "reference loop, SQLite",
    store: () => "a SQLite file",
    reachable: async () => betterSqliteVersion,
    drain: (args) => sqliteLoopDrain(args),
  },
  postgresLoop: {
    label: "reference loop, PostgreSQL",
    store: () => O.postgres,
    reachable: () => pgReachable(O.postgres),
    drain: (args) => postgresLoopDrain({ ...args, postgres: O.postgres }),
  },
  graphile: {
    label: "graphile-worker",
    store: () => O.postgres,
    reachable: () => pgReachable(O.postgres),
    drain: (args) => graphileDrain({ ...args, postgres: O.postgres }),
  },
};
/** The peer each carehooks database is compared with. */
const PEER_OF = { sqlite: "bullmq", postgres: "graphile" };
/** The reference loop on each kind of store (peers/loop.mjs), and the peer it is compared with. */
const LOOP_OF = { sqlite: "sqliteLoop", postgres: "postgresLoop" };
const LOOP_PEER = Object.fromEntries(Object.entries(LOOP_OF).map(([db, loop]) => [loop, PEER_OF[db]]));

async function peerSuite(results, peer, receiverSources) {
  results.peers ??= {};
  results.peers[peer] = await peerDrain(peer, receiverSources);
}

/** One drain of a peer's backlog: { server, drain } or { error } (the store unreachable, or the run failed). */
async function peerDrain(peer, receiverSources, round = "") {
  const p = PEERS[peer];
  const server = await p.reachable();
  if (!server) {
    log(`${p.label}${round}: ${p.store()} unreachable; skipped`);
    return { error: `unreachable: ${p.store()}` };
  }
  const events = O.events + WARM_EVENTS;
  log(`${p.label}${round}: ${events} jobs enqueued, then drained by one worker process, concurrency ${O.inFlight}`);
  try {
    const d = await p.drain({
      receiver,
      key: newSigningKey(),
      url: `http://127.0.0.1:${receiver.ports[0]}/hook/${peer}-drain`,
      events,
      concurrency: O.inFlight,
      timeoutMs: O.timeoutMs,
      cpuSources: receiverSources,
    });
    log(`${p.label}${round}: drain ${d.rate} deliveries/s`);
    return { server, drain: d };
  } catch (error) {
    log(`${p.label}${round} failed: ${error.stack ?? error}`);
    return { server, error: String(error.message ?? error) };
  }
}

/**
 * On a fresh PostgreSQL schema: an `api` and its backlog, drained by O.workers `worker`s; the
 * schema is dropped after.
 */
async function postgresBacklogAndDrain(receiverSources, round, result) {
  const dep = await tracked(await prepareDeployment({ kind: "postgres", pgBase: O.postgres, extraEnv: commonEnv() }));
  let drained;
  let workers = [];
  try {
    const apiSrv = await dep.serve("api", `pg-api${round}`);
    const api = new Api(apiSrv.port, 256);
    await api.login(dep.clients[0]);
    const key = newSigningKey();
    await api.createWebhook(`http://127.0.0.1:${receiver.ports[0]}/hook/pg-drain`, key);
    const base = { api: pid(apiSrv), postgres: () => cpuSecondsOfComm("postgres"), ...receiverSources };
    drained = await backlogThenDrain({
      label: `postgres${round}`,
      api,
      key,
      apiSources: base,
      drainSources: base,
      startDispatcher: async () => {
        workers = await Promise.all(
          Array.from({ length: O.workers }, (_, i) => dep.serve("worker", `pg-worker-${i + 1}${round}`)),
        );
        return Object.fromEntries(workers.map((w, i) => [`worker${i + 1}`, pid(w)]));
      },
    });
    drained.workers = await workerBatches(`postgres${round}`, workers);
    await api.close();
  } finally {
    await release(dep, result);
  }
  return drained;
}

/**
 * What the rounds compare on each database: carehooks' drain on a fresh deployment (with the
 * API-only run that makes its backlog), the peer queue's and the reference loop's drains, and on
 * SQLite the reference ingest, and end to end (unless skipped) carehooks' runs on the drained
 * server and the reference end to end.
 */
const ROUNDS = {
  sqlite: {
    label: "SQLite",
    peer: "bullmq",
    loop: "sqliteLoop",
    ingest: true,
    carehooks: async (receiverSources, round, result) => {
      const dep = await tracked(
        await prepareDeployment({ kind: "sqlite", extraEnv: { ...commonEnv(), CAREHOOKS_POLL_INTERVAL: "10s" } }),
      );
      try {
        const key = newSigningKey();
        const { srv, drain } = await sqliteBacklogAndDrain(dep, key, receiverSources, round);
        if (O.skip.has("e2e")) return drain;
        // End to end on the same server, warm from its drain (its webhook has the key); a failure
        // here leaves the round's drain standing.
        const api = new Api(srv.port, 64);
        try {
          await api.login(dep.clients[0]);
          const sources = { server: pid(srv), ...receiverSources };
          const e2e = await warmUpAndEndToEnd({
            label: `sqlite${round}`,
            api,
            receiver,
            key,
            cpuSources: () => sources,
          });
          return { ...drain, e2eRate: e2e?.best?.rate };
        } catch (error) {
          log(`sqlite${round}: end to end failed: ${error.stack ?? error}`);
          return drain;
        } finally {
          await api.close();
        }
      } finally {
        await release(dep, result);
      }
    },
  },
  postgres: {
    label: "PostgreSQL",
    peer: "graphile",
    loop: "postgresLoop",
    ingest: false,
    carehooks: postgresBacklogAndDrain,
  },
};

/**
 * Rounds 2..N of the comparison on `db` (round 1 is the main run's). Even rounds run the peer and
 * the loop first, so that neither side always drains first. One drain is one sample on a noisy
 * machine; the report gives the median of each ratio over the rounds. A round's figure is null
 * where its run failed or a drain did not deliver everything. `rawCheck` measures the raw POST rate
 * once, just before each round (the main run's round has no reading of its own).
 */
async function dbRounds(db, results, receiverSources, rawCheck) {
  const r = ROUNDS[db];
  const rate = (drain) => (drain?.complete ? drain.rate : null);
  const withE2e = r.ingest && !O.skip.has("e2e");
  const sample = (carehooks, peer, loop, ingest, raw, e2e, ingestE2e) => ({
    drain: rate(carehooks),
    apiOnly: carehooks?.apiOnlyCreateRate ?? null,
    peer: rate(peer?.drain),
    loop: rate(loop?.drain),
    ...(r.ingest ? { ingestLoop: ingest?.rate ?? null } : {}),
    ...(withE2e ? { e2e: e2e ?? null, ingestLoopE2e: ingestE2e?.best?.rate ?? null } : {}),
    raw: raw ?? null,
  });
  const rounds = [
    sample(
      results[db].drain,
      results.peers?.[r.peer],
      results.peers?.[r.loop],
      results.ingestLoop,
      undefined,
      results[db].e2e?.best?.rate,
      results.ingestLoopE2e,
    ),
  ];
  for (let i = 2; i <= O.drainRounds; i++) {
    const label = ` (round ${i}/${O.drainRounds})`;
    // The raw rate moves within a run: each round gets a reading of its own, taken just before it.
    const raw = await rawCheck().catch((error) => log(`${db}${label}: raw POSTs failed: ${error.stack ?? error}`));
    if (raw) log(`${db}${label}: raw POSTs just before it ${raw.rate} req/s`);
    const carehooks = () =>
      r
        .carehooks(receiverSources, label, results[db])
        .catch((error) => log(`${db}${label} failed: ${error.stack ?? error}`));
    const others = async () => ({
      peer: await peerDrain(r.peer, receiverSources, label),
      loop: await peerDrain(r.loop, receiverSources, label),
    });
    let drained;
    let other;
    if (i % 2 === 0) {
      other = await others();
      drained = await carehooks();
    } else {
      drained = await carehooks();
      other = await others();
    }
    const ingest = r.ingest
      ? await ingestLoopCreates({ events: O.events, warm: WARM_EVENTS, concurrency: O.concurrency }).catch((error) =>
          log(`reference ingest${label} failed: ${error.stack ?? error}`),
        )
      : undefined;
    const ingestE2e = withE2e
      ? await referenceEndToEnd(receiverSources).catch((error) =>
          log(`reference end to end${label} failed: ${error.stack ?? error}`),
        )
      : undefined;
    rounds.push(sample(drained, other.peer, other.loop, ingest, raw?.rate, drained?.e2eRate, ingestE2e));
  }
  return rounds;
}

/** The reference ingest (peers/ingest-loop.mjs): the API-only scenario against the smallest durable API. */
async function ingestSuite(results) {
  log(`reference ingest: ${WARM_EVENTS} warm-up creates, then ${O.events} (concurrency ${O.concurrency})`);
  try {
    results.ingestLoop = await ingestLoopCreates({ events: O.events, warm: WARM_EVENTS, concurrency: O.concurrency });
    log(`reference ingest: ${results.ingestLoop.rate} creates/s`);
  } catch (error) {
    log(`reference ingest failed: ${error.stack ?? error}`);
    results.ingestLoop = { error: String(error.message ?? error) };
  }
}

/** One reference end to end, with the options of carehooks' end-to-end runs. */
function referenceEndToEnd(receiverSources) {
  return ingestLoopEndToEnd({
    receiver,
    key: newSigningKey(),
    url: `http://127.0.0.1:${receiver.ports[0]}/hook/reference-e2e`,
    events: O.events,
    warm: WARM_EVENTS,
    runs: O.repeat,
    concurrency: O.concurrency,
    inFlight: O.inFlight,
    timeoutMs: O.timeoutMs,
    cpuSources: receiverSources,
  });
}

/**
 * The reference end to end (peers/ingest-loop.mjs delivering with peers/loop.mjs): carehooks'
 * end-to-end scenario against the reference ingest and loop in one thread, as many runs.
 */
async function ingestEndToEndSuite(results, receiverSources) {
  log(
    `reference end to end: ${WARM_EVENTS} warm-up events, then ${O.repeat} × ${O.events} (concurrency ${O.concurrency}, ${O.inFlight} in flight)`,
  );
  try {
    results.ingestLoopE2e = await referenceEndToEnd(receiverSources);
    log(`reference end to end: ${results.ingestLoopE2e.best.rate} events/s`);
  } catch (error) {
    log(`reference end to end failed: ${error.stack ?? error}`);
    results.ingestLoopE2e = { error: String(error.message ?? error) };
  }
}

// ---- report ----
/** How the warm half's requests reached the receiver (scenarios.mjs, arrivalPattern), for the notes column. */
function arrivalsText(a) {
  if (!a) return "";
  return `receipts in bursts of ${a.meanBurst}, ${Math.round(a.gapShare * 100)}% of the span in gaps > 0.15 ms · gaps p50 ${a.gapP50Us} µs, p90 ${a.gapP90Us} µs`;
}

function cpuText(cpu) {
  if (!cpu) return "";
  return Object.entries(cpu)
    .map(([k, v]) => `${k === "machineBusy" ? "machine" : k} ${v}%`)
    .join(" · ");
}

function buildRows(results) {
  const rows = [];
  const b1 = results.baseline.reference.fanout1;
  const b10 = results.baseline.reference.fanout10;
  rows.push([
    "baseline",
    `raw undici POST, 1 receiver × ${O.inFlight} conns`,
    `${b1} req/s`,
    "1.00",
    cpuText(results.baseline.fanout1.best?.cpu),
  ]);
  if (b10)
    rows.push([
      "baseline",
      `raw undici POST, 10 receivers × ${O.inFlight} conns`,
      `${b10} req/s`,
      "1.00",
      cpuText(results.baseline.fanout10.best?.cpu),
    ]);
  for (const db of ["sqlite", "postgres"]) {
    const r = results[db];
    if (!r) continue;
    const name = db === "sqlite" ? "SQLite, 1 process" : `PostgreSQL, api + ${O.workers} workers`;
    if (r.error) rows.push([name, "FAILED (partial results below)", r.error.split("\n")[0].slice(0, 70), "", ""]);
    if (r.serverErrors) {
      const count = r.serverErrors.reduce((a, e) => a + e.count, 0);
      const first = /"msg":"([^"]*)"/.exec(r.serverErrors[0].lines[0] ?? "")?.[1] ?? "";
      rows.push([
        name,
        "error-level server log lines",
        String(count),
        "",
        `first: ${first.slice(0, 80)} (serverErrors in the JSON)`,
      ]);
    }
    if (r.e2e) {
      const e = r.e2e.best;
      const reference = db === "sqlite" ? results.ingestLoopE2e?.best?.rate : undefined;
      rows.push([
        name,
        `end to end, fan-out 1 (${e.events} events)`,
        `${e.rate} events/s`,
        ratio(e.rate, b1),
        cpuText(e.cpu),
        reference ? `${ratio(e.rate, reference)} × the reference end to end` : "",
      ]);
      rows.push([
        name,
        "  API create rate in that run",
        `${e.createRate} creates/s`,
        ratio(e.createRate, b1),
        `API p50 ${e.apiLatencyMs.p50} ms, p99 ${e.apiLatencyMs.p99} ms`,
      ]);
    }
    for (const [target, f] of Object.entries(r.fanout ?? {})) {
      const label = target === "ports" ? "10 receiver ports" : "10 paths, 1 port";
      rows.push([
        name,
        `fan-out 10 (${label}), ${f.events} events`,
        `${f.deliveryRate} deliveries/s`,
        ratio(f.deliveryRate, target === "ports" ? b10 : b1),
        cpuText(f.cpu),
      ]);
      rows.push([name, "  events fully delivered", `${f.rate} events/s`, "", `creates ${f.createRate}/s`]);
    }
    if (r.drain) {
      const d = r.drain;
      const peer = PEER_OF[db];
      const peerRate = results.peers?.[peer]?.drain?.rate;
      const loopRate = results.peers?.[LOOP_OF[db]]?.drain?.rate;
      rows.push([
        name,
        `backlog drain (dispatcher only, ${d.expected})`,
        `${d.rate} deliveries/s`,
        ratio(d.rate, b1),
        cpuText(d.cpu),
        [
          peerRate ? `${ratio(d.rate, peerRate)} × ${PEERS[peer].label}` : "",
          loopRate ? `${ratio(d.rate, loopRate)} × the reference loop` : "",
        ]
          .filter(Boolean)
          .join(" · "),
      ]);
      const peerWarm = results.peers?.[peer]?.drain?.secondHalfRate;
      rows.push([
        name,
        "  its second half (warmed up)",
        `${d.secondHalfRate} deliveries/s`,
        ratio(d.secondHalfRate, b1),
        arrivalsText(d.secondHalfArrivals),
        peerWarm ? `${ratio(d.secondHalfRate, peerWarm)} × ${PEERS[peer].label}'s` : "",
      ]);
      const ingestRate = db === "sqlite" ? results.ingestLoop?.rate : undefined;
      rows.push([
        name,
        "  API-only create rate (no dispatcher)",
        `${d.apiOnlyCreateRate} creates/s`,
        ratio(d.apiOnlyCreateRate, b1),
        cpuText(d.apiOnly?.cpu),
        ingestRate ? `${ratio(d.apiOnlyCreateRate, ingestRate)} × the reference ingest` : "",
      ]);
    }
    for (const [l, seconds, what] of [
      [r.latencyLow, LOW_RATE_SECONDS, "latency"],
      [r.latencyWarmup, O.latencyWarmup, "  warm-up, not counted"],
      [r.latency, O.duration, "latency"],
    ]) {
      if (!l) continue;
      const m = l.latencyMs;
      rows.push([
        name,
        `${what} commit→receipt @ ${l.targetRate}/s × ${seconds}s`,
        `p50 ${m.p50} · p90 ${m.p90} · p99 ${m.p99} · max ${m.max} ms`,
        "",
        `${l.arrived}/${l.created} arrived, sent at ${l.achievedRate}/s${l.sustained ? "" : " (rate NOT sustained)"}; ${cpuText(l.cpu)}`,
      ]);
    }
  }
  for (const [peer, r] of Object.entries(results.peers ?? {})) {
    const p = PEERS[peer];
    if (r.error) {
      rows.push([p.label, "backlog drain: not measured", r.error.split("\n")[0].slice(0, 70), "", ""]);
      continue;
    }
    const d = r.drain;
    const version = r.server.split(" ")[0]; // PostgreSQL's has the distribution's build after it
    const setup =
      {
        sqliteLoop: `reference loop + undici, SQLite (better-sqlite3 ${d.version})`,
        postgresLoop: `reference loop + undici, PostgreSQL ${version} (pg ${d.version})`,
      }[peer] ?? `${p.label} ${d.version} + undici, ${peer === "bullmq" ? "Redis" : "PostgreSQL"} ${version}`;
    // A reference loop beside the peer on its kind of store: what the set-based design at its smallest makes of the same run.
    const against = LOOP_PEER[peer];
    const other = against ? results.peers[against]?.drain : undefined;
    rows.push([
      setup,
      `backlog drain (1 worker, concurrency ${d.concurrency}, ${d.expected})`,
      `${d.rate} deliveries/s`,
      ratio(d.rate, b1),
      `${cpuText(d.cpu)}; jobs ${JSON.stringify(d.counts)}`,
      other?.rate ? `${ratio(d.rate, other.rate)} × ${PEERS[against].label}` : "",
    ]);
    rows.push([
      "",
      "  its second half (warmed up)",
      `${d.secondHalfRate} deliveries/s`,
      ratio(d.secondHalfRate, b1),
      arrivalsText(d.secondHalfArrivals),
      other?.secondHalfRate ? `${ratio(d.secondHalfRate, other.secondHalfRate)} × ${PEERS[against].label}'s` : "",
    ]);
  }
  const ingestE2e = results.ingestLoopE2e;
  if (ingestE2e?.error)
    rows.push(["reference end to end", "end to end: not measured", ingestE2e.error.slice(0, 70), "", ""]);
  else if (ingestE2e) {
    const e = ingestE2e.best;
    rows.push([
      `reference ingest + loop + node:http + undici, SQLite (better-sqlite3 ${ingestE2e.version})`,
      `end to end, fan-out 1 (${e.events} events, one thread)`,
      `${e.rate} events/s`,
      ratio(e.rate, b1),
      `${cpuText(e.cpu)} · API p50 ${e.apiLatencyMs.p50} ms, p99 ${e.apiLatencyMs.p99} ms`,
    ]);
  }
  const ingest = results.ingestLoop;
  if (ingest?.error)
    rows.push(["reference ingest", "API-only creates: not measured", ingest.error.slice(0, 70), "", ""]);
  else if (ingest) {
    rows.push([
      `reference ingest + node:http, SQLite (better-sqlite3 ${ingest.version})`,
      `API-only creates (${ingest.created}, one thread)`,
      `${ingest.rate} creates/s`,
      ratio(ingest.rate, b1),
      cpuText(ingest.cpu),
    ]);
  }
  return rows;
}

function printRounds(results) {
  for (const [db, m] of Object.entries(results.ratios.rounds ?? {})) {
    const { label, peer } = ROUNDS[db];
    process.stdout.write(
      `${label} over ${m.rounds} rounds (median, the rounds it is of, then each round's; - where one failed):\n`,
    );
    const lines = [
      ["drain ÷ raw", m.drain],
      [`drain ÷ ${PEERS[peer].label}'s`, m.drainVsPeer],
      ["drain ÷ the reference loop's", m.drainVsLoop],
      ["API-only creates ÷ raw", m.apiOnly],
      ...(m.apiOnlyVsIngestLoop ? [["API-only creates ÷ the reference ingest's", m.apiOnlyVsIngestLoop]] : []),
      ["the reference loop's drain ÷ raw", m.loop],
      [`the reference loop's drain ÷ ${PEERS[peer].label}'s`, m.loopVsPeer],
      ...(m.ingestLoop ? [["the reference ingest's creates ÷ raw", m.ingestLoop]] : []),
      ...(m.e2e
        ? [
            ["end to end ÷ raw", m.e2e],
            ["end to end ÷ the reference end to end's", m.e2eVsReference],
            ["the reference end to end ÷ raw", m.ingestLoopE2e],
          ]
        : []),
      ["drain ÷ the round's own raw", m.drainVsRoundRaw],
      ["the reference loop's drain ÷ the round's raw", m.loopVsRoundRaw],
    ];
    for (const [name, r] of lines) {
      const each = r.each.map((x) => x ?? "-").join(", ");
      process.stdout.write(
        `  ${name.padEnd(48)} ${String(r.median ?? "-").padEnd(5)} ${r.samples}/${m.rounds}  (${each})\n`,
      );
    }
    process.stdout.write("\n");
  }
}

/** rows: [setup, figure, value, ÷ raw, notes], and after the notes the ratio to the peer queue or the reference, where there is one. */
function printTable(rows) {
  const header = ["setup", "figure", "value", "÷ raw", "÷ peer, ÷ reference", "notes (CPU % of one core)"];
  const cells = rows.map(([setup, figure, value, raw, notes, peer]) => [setup, figure, value, raw, peer, notes]);
  const all = [header, ...cells.map((r) => r.map((c) => (c === undefined ? "" : String(c))))];
  const widths = header.map((_, i) => Math.max(...all.map((r) => r[i].length)));
  const line = (r) => r.map((c, i) => c.padEnd(widths[i])).join("  ");
  process.stdout.write(`\n${line(all[0])}\n${widths.map((w) => "-".repeat(w)).join("  ")}\n`);
  for (const r of all.slice(1)) process.stdout.write(`${line(r)}\n`);
  process.stdout.write("\n");
}

function printCpuPerUnit(results) {
  const lines = [];
  const fmt = (o) =>
    Object.entries(o ?? {})
      .filter(([k]) => k !== "bench" && k !== "receiver")
      .map(([k, v]) => `${k} ${v}`)
      .join(" · ");
  for (const db of ["sqlite", "postgres"]) {
    const r = results[db];
    if (!r) continue;
    if (r.e2e) lines.push([db, "end to end, per event", fmt(r.e2e.best.cpuMsPerEvent)]);
    if (r.drain?.apiOnly) lines.push([db, "API only, per create", fmt(r.drain.apiOnly.cpuMsPerEvent)]);
    if (r.drain) lines.push([db, "backlog drain, per delivery", fmt(r.drain.cpuMsPerDelivery)]);
    if (r.fanout?.ports) lines.push([db, "fan-out 10, per event (10 deliveries)", fmt(r.fanout.ports.cpuMsPerEvent)]);
  }
  for (const [peer, r] of Object.entries(results.peers ?? {})) {
    if (r.drain) lines.push([peer, "backlog drain, per delivery", fmt(r.drain.cpuMsPerDelivery)]);
  }
  if (results.ingestLoop?.cpuMsPerEvent)
    lines.push(["ingestLoop", "API only, per create", fmt(results.ingestLoop.cpuMsPerEvent)]);
  if (results.ingestLoopE2e?.best?.cpuMsPerEvent)
    lines.push(["ingestLoop", "end to end, per event", fmt(results.ingestLoopE2e.best.cpuMsPerEvent)]);
  if (lines.length === 0) return;
  process.stdout.write("CPU milliseconds per unit of work (whole-process CPU; postgres = all its server processes):\n");
  const w0 = Math.max(...lines.map((l) => l[0].length));
  const w1 = Math.max(...lines.map((l) => l[1].length));
  for (const [a, b, c] of lines) process.stdout.write(`  ${a.padEnd(w0)}  ${b.padEnd(w1)}  ${c}\n`);
  process.stdout.write("\n");
}

// ---- main ----
async function main() {
  const started = now();
  const results = {
    date: new Date().toISOString(),
    machine: machine(),
    options: { ...O, only: [...O.only], skip: [...O.skip], nodeFlags: serveNodeFlags, peerNodeFlags },
    baseline: {},
  };
  const m = results.machine;
  if (m.staleDist.length > 0)
    log(`warning: packages/server/dist is older than ${m.staleDist.join(", ")}: npm run build`);
  const tree = m.uncommitted.length > 0 ? ` + uncommitted ${m.uncommitted.join(", ")}` : "";
  log(`machine: ${m.nproc} cores, node ${m.node}, load ${m.loadavgAtStart.join(" ")}; carehooks ${m.commit}${tree}`);
  receiver = await startReceiver(FANOUT);
  const receiverSources = { receiver: () => cpuSecondsOf(receiver.child.pid) };
  const key = newSigningKey();

  const baseline = async (ports, runs) => {
    const out = [];
    for (let i = 0; i < runs; i++) {
      out.push(
        await rawPostRate({
          receiver,
          ports,
          connections: O.inFlight,
          seconds: O.baselineSeconds,
          key,
          cpuSources: receiverSources,
        }),
      );
    }
    return out;
  };
  log(`baseline: raw POSTs, ${O.inFlight} connections per receiver, 2 × ${O.baselineSeconds} s each`);
  const f1 = await baseline([receiver.ports[0]], 2);
  log(`baseline: ${f1.map((r) => r.rate).join(", ")} req/s`);
  const f10 = await baseline(receiver.ports.slice(0, FANOUT), 2);
  log(`baseline: 10 receivers: ${f10.map((r) => r.rate).join(", ")} req/s`);
  results.baseline.fanout1 = { runs: f1, best: best(f1) };
  results.baseline.fanout10 = { runs: f10, best: best(f10) };

  if (O.only.has("sqlite")) {
    try {
      results.sqlite = {};
      await sqliteSuite(results.sqlite, receiverSources);
    } catch (error) {
      log(`sqlite suite failed: ${error.stack ?? error}`);
      results.sqlite.error = String(error.message ?? error);
    }
  }
  // each peer right after carehooks on the same kind of store, so the two are minutes apart
  if (O.only.has("peers")) await peerSuite(results, "bullmq", receiverSources);
  if (O.only.has("peers")) await peerSuite(results, "sqliteLoop", receiverSources);
  // against carehooks' API-only run, which the SQLite drain scenario makes
  if (O.only.has("peers") && results.sqlite?.drain) await ingestSuite(results);
  // against carehooks' end-to-end runs on SQLite
  if (O.only.has("peers") && results.sqlite?.e2e) await ingestEndToEndSuite(results, receiverSources);
  if (O.only.has("postgres")) {
    const version = await pgReachable(O.postgres);
    if (!version) {
      log(`postgres: ${O.postgres} unreachable; skipped`);
      results.postgres = { error: `unreachable: ${O.postgres}` };
    } else {
      results.machine.postgres = version;
      try {
        results.postgres = {};
        await postgresSuite(results.postgres, receiverSources);
      } catch (error) {
        log(`postgres suite failed: ${error.stack ?? error}`);
        results.postgres.error = String(error.message ?? error);
      }
    }
  }
  if (O.only.has("peers")) await peerSuite(results, "graphile", receiverSources);
  if (O.only.has("peers")) await peerSuite(results, "postgresLoop", receiverSources);
  for (const db of ["sqlite", "postgres"]) {
    if (O.drainRounds < 2 || !O.only.has(db)) continue;
    if (O.only.has("peers") && results[db]?.drain) {
      results.rounds ??= {};
      results.rounds[db] = await dbRounds(
        db,
        results,
        receiverSources,
        async () => (await baseline([receiver.ports[0]], 1))[0],
      );
    } else {
      log(`${db}: drain rounds left out (they need its drain and the peers)`);
    }
  }

  log("baseline: once more at the end (drift check)");
  const end = await baseline([receiver.ports[0]], 1);
  results.baseline.fanout1.end = end[0];
  const end10 = await baseline(receiver.ports.slice(0, FANOUT), 1);
  results.baseline.fanout10.end = end10[0];
  log(`baseline at end: ${end[0].rate} req/s; 10 receivers ${end10[0].rate} req/s`);
  // Ratios use the best raw rate seen in the run (at the start, before each round, at the end): the
  // conservative choice on a noisy machine.
  const roundsRaw = Object.values(results.rounds ?? {}).flatMap((rounds) => rounds.map((r) => r.raw ?? 0));
  results.baseline.reference = {
    fanout1: Math.max(...f1.map((r) => r.rate), end[0].rate, ...roundsRaw),
    fanout10: Math.max(...f10.map((r) => r.rate), end10[0].rate),
  };
  const b1 = results.baseline.reference.fanout1;
  const b10 = results.baseline.reference.fanout10;
  results.ratios = {};
  for (const db of ["sqlite", "postgres"]) {
    const r = results[db];
    if (!r) continue;
    results.ratios[db] = {
      e2eFanout1: ratio(r.e2e?.best?.rate, b1),
      // SQLite: against the reference end to end (peers/ingest-loop.mjs delivering), measured in the same run
      e2eVsReference: db === "sqlite" ? ratio(r.e2e?.best?.rate, results.ingestLoopE2e?.best?.rate) : undefined,
      createRate: ratio(r.e2e?.best?.createRate, b1),
      fanout10Ports: ratio(r.fanout?.ports?.deliveryRate, b10),
      fanout10Paths: ratio(r.fanout?.paths?.deliveryRate, b1),
      drain: ratio(r.drain?.rate, b1),
      apiOnly: ratio(r.drain?.apiOnlyCreateRate, b1),
      // the peer queue on the same kind of store (PEER_OF), measured in the same run
      drainVsPeer: ratio(r.drain?.rate, results.peers?.[PEER_OF[db]]?.drain?.rate),
      // the second half of each drain: both warmed up (the targets are on the whole drain)
      drainSecondHalf: ratio(r.drain?.secondHalfRate, b1),
      drainSecondHalfVsPeer: ratio(r.drain?.secondHalfRate, results.peers?.[PEER_OF[db]]?.drain?.secondHalfRate),
      peer: PEER_OF[db],
      // against the reference loop on the same kind of store (peers/loop.mjs), the design at its smallest
      drainVsLoop: ratio(r.drain?.rate, results.peers?.[LOOP_OF[db]]?.drain?.rate),
      // SQLite: the API-only rate against the reference ingest (peers/ingest-loop.mjs)
      apiOnlyVsIngestLoop: db === "sqlite" ? ratio(r.drain?.apiOnlyCreateRate, results.ingestLoop?.rate) : undefined,
      latencyP99Ms: r.latency?.latencyMs?.p99,
      latencyLowRateP99Ms: r.latencyLow?.latencyMs?.p99,
      // If the API and the dispatcher only competed for the same CPU, end to end would be about
      // 1 / (1/apiOnly + 1/drain): compare with e2eFanout1 × raw.
      additiveBound:
        r.drain?.apiOnlyCreateRate && r.drain?.rate
          ? round(1 / (1 / r.drain.apiOnlyCreateRate + 1 / r.drain.rate))
          : undefined,
    };
  }
  for (const [peer, r] of Object.entries(results.peers ?? {})) {
    results.ratios.peers ??= {};
    results.ratios.peers[peer] = { drain: ratio(r.drain?.rate, b1) };
    if (LOOP_PEER[peer]) {
      results.ratios.peers[peer].vsPeer = ratio(r.drain?.rate, results.peers[LOOP_PEER[peer]]?.drain?.rate);
    }
  }
  if (results.ingestLoop?.rate) results.ratios.ingestLoop = ratio(results.ingestLoop.rate, b1);
  if (results.ingestLoopE2e?.best?.rate) results.ratios.ingestLoopE2e = ratio(results.ingestLoopE2e.best.rate, b1);
  for (const [db, rounds] of Object.entries(results.rounds ?? {})) {
    results.ratios.rounds ??= {};
    results.ratios.rounds[db] = roundRatios(rounds, b1);
  }
  const checked = targetsOf(results, b1, PEER_OF);
  results.targets = checked.targets;
  if (checked.onRoundMedians) results.targetsOnRoundMedians = checked.onRoundMedians;
  results.wallSeconds = round((now() - started) / 1000, 1);

  printTable(buildRows(results));
  printCpuPerUnit(results);
  printRounds(results);
  process.stdout.write(`targets: ${JSON.stringify(results.targets)}\n`);
  if (results.targetsOnRoundMedians)
    process.stdout.write(`targets, median of the rounds: ${JSON.stringify(results.targetsOnRoundMedians)}\n`);
  mkdirSync(path.dirname(O.out), { recursive: true });
  writeFileSync(O.out, formatJson(results));
  process.stdout.write(
    `results written to ${path.relative(process.cwd(), O.out) || O.out} (${results.wallSeconds} s)\n`,
  );
}

let exitCode = 0;
try {
  await main();
} catch (error) {
  log(`failed: ${error.stack ?? error}`);
  exitCode = 1;
} finally {
  await cleanup();
}
process.exit(exitCode);

/** The warm-up, then the fan-out 1 end-to-end runs (best kept); undefined when skipped. */
async function warmUpAndEndToEnd({ label, api, receiver, key, cpuSources }) {
  log(`${label}: warm-up (${WARM_EVENTS} events)`);
  const measured = await warmedEndToEndRuns({
    api,
    receiver,
    key,
    warm: WARM_EVENTS,
    runs: O.skip.has("e2e") ? 0 : O.repeat,
    events: O.events,
    concurrency: O.concurrency,
    timeoutMs: O.timeoutMs,
    cpuSources,
    before: (r) => log(`${label}: end-to-end fan-out 1, run ${r + 1}/${O.repeat} (${O.events} events)`),
    after: (run) => log(`${label}: ${run.rate} events/s end to end, ${run.createRate} creates/s`),
  });
  return measured.runs.length > 0 ? measured : undefined;
}
