#!/usr/bin/env node
// What the claim and completion statements cost per delivery, in one process, with nothing else
// running: a backlog is made through the API (a real `serve --role api`), then claimed in batches
// and completed as successes until none is left. On SQLite each round drains a fresh copy of the
// database; with --postgres each drain starts from a fresh backlog in the same schema (the last
// one's deliveries and attempts truncated), and the report adds the CPU of every postgres process
// this machine shows in /proc. `--baseline DIR` (another build's dist, inside this checkout so its
// imports resolve, e.g. packages/server/.baseline/dist) alternates rounds with it, and which build
// goes first, so both see the same machine load.
//
//   npm run build && node bench/queue-micro.mjs [--events N] [--batch B] [--rounds R] [--baseline DIR]
//   node bench/queue-micro.mjs --postgres --batch 40 --rounds 4
//
// Run it under `node --import ./bench/lib/sql-timing.mjs` with CAREHOOKS_BENCH_SQL_PROFILE_DIR set
// for the time of each statement (bench/sql-summary.mjs prints them).
import { cpSync, mkdtempSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import os from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { Api, prepareDeployment } from "./lib/carehooks.mjs";
import { pg, SERVER_DIR } from "./lib/deps.mjs";
import { cpuSecondsOfComm } from "./lib/procs.mjs";
import { createMany } from "./lib/scenarios.mjs";
import { summarize } from "./lib/stats.mjs";

const HELP = `Usage: node bench/queue-micro.mjs [options]

  --events N         deliveries in the backlog, made through the API (default 6000)
  --batch B          deliveries per claim, the dispatcher's free slots (default 60)
  --rounds R         rounds per build; the median is reported (default 5)
  --synchronous S    SQLite: the connection's synchronous setting, FULL or NORMAL (default
                     NORMAL: no fsync, so the figures are the statements' CPU)
  --analyze          run ANALYZE on each copy first, as an operator's ANALYZE or PRAGMA optimize
                     would leave it: statistics taken while nothing is in flight
  --small-statistics with --analyze: then make every table look as it did when it held 30 rows
                     (statistics taken early and left stale as the database grew)
  --idle-webhooks N  also register N webhooks that never have a delivery (default 0), their ids
                     before and after the busy one's, as a deployment with many idle endpoints
  --baseline DIR     another build's dist directory, measured in alternate rounds as "before"
  --postgres         PostgreSQL instead, in a schema of its own dropped at the end; its migrations
                     are this build's, whichever build drains, so --baseline compares statements,
                     not migrations (a trigger change is compared by applying it between rounds)
  --postgres-url URL the server (default $CAREHOOKS_BENCH_POSTGRES_URL or
                     postgres://postgres@127.0.0.1:5432/test)
`;

const { values: opts } = parseArgs({
  options: {
    events: { type: "string", default: "6000" },
    batch: { type: "string", default: "60" },
    rounds: { type: "string", default: "5" },
    synchronous: { type: "string", default: "NORMAL" },
    analyze: { type: "boolean", default: false },
    "small-statistics": { type: "boolean", default: false },
    baseline: { type: "string" },
    "idle-webhooks": { type: "string", default: "0" },
    postgres: { type: "boolean", default: false },
    "postgres-url": { type: "string" },
    help: { type: "boolean", default: false },
  },
});
if (opts.help) {
  process.stdout.write(HELP);
  process.exit(0);
}

const Database = createRequire(path.join(SERVER_DIR, "package.json"))("better-sqlite3");
const builds = { after: path.join(SERVER_DIR, "dist") };
if (opts.baseline) builds.before = path.resolve(opts.baseline);

if (opts.postgres && (opts.analyze || opts["small-statistics"])) {
  process.stderr.write("--analyze and --small-statistics are SQLite's; PostgreSQL keeps its own statistics\n");
  process.exit(2);
}
const postgresUrl = opts.postgres
  ? (opts["postgres-url"] ?? process.env.CAREHOOKS_BENCH_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/test")
  : undefined;
const deployment = await prepareDeployment(
  postgresUrl ? { kind: "postgres", pgBase: postgresUrl } : { kind: "sqlite" },
);
// Stopped from outside (a test's timeout, Ctrl-C): its server and its files go too.
for (const signal of ["SIGINT", "SIGTERM"]) {
  process.once(signal, () => {
    void deployment.cleanup().finally(() => process.exit(130));
  });
}
try {
  const proc = await deployment.serve("api", "api");
  const api = new Api(proc.port);
  await api.login(deployment.clients[0]);
  // Never sent to: only the statements are measured.
  await api.createWebhook("http://127.0.0.1:9/hook", `whsec_${Buffer.alloc(32, 1).toString("base64")}`);
  /** opts.events due deliveries: made once on SQLite (each round drains a copy), before each drain on PostgreSQL. */
  const backlog = () => createMany(api, Number(opts.events), 16);
  if (!postgresUrl) {
    await backlog();
    await api.close();
    await deployment.stopAll();
  }
  await addIdleWebhooks(Number(opts["idle-webhooks"]));

  const samples = Object.fromEntries(Object.keys(builds).map((label) => [label, []]));
  for (let r = 0; r < Number(opts.rounds); r += 1) {
    // Alternately first: the second of two back-to-back drains tends to be the slower (bench/README.md).
    const order = r % 2 === 0 ? Object.entries(builds) : Object.entries(builds).reverse();
    for (const [label, dist] of order) {
      if (postgresUrl) await backlog();
      samples[label].push(await (postgresUrl ? drainSchema(dist) : drainOnce(dist)));
    }
  }
  if (postgresUrl) await api.close();
  const setting = postgresUrl
    ? "PostgreSQL, asynchronous commits as a worker's"
    : `synchronous=${opts.synchronous}${opts.analyze ? (opts["small-statistics"] ? ", small statistics" : ", analyzed") : ""}`;
  console.log(
    `queue: ${opts.events} deliveries per round, claims of ${opts.batch}, ${setting}, ${opts.rounds} rounds, medians`,
  );
  if (Number(opts["idle-webhooks"]) > 0) console.log(`and ${opts["idle-webhooks"]} idle webhooks`);
  const extra = postgresUrl ? "   postgres CPU µs/delivery" : "";
  console.log(`build     claim µs/delivery   complete µs/delivery   claims   delivered   next due µs${extra}`);
  for (const [label, rounds] of Object.entries(samples)) {
    const median = (key) => summarize(rounds.map((round) => round[key])).p50;
    const cpu = postgresUrl ? String(median("postgresCpuUs") ?? "n/a").padStart(27) : "";
    console.log(
      `${label.padEnd(9)} ${String(median("claimUs")).padStart(17)} ${String(median("completeUs")).padStart(22)} ${String(median("claims")).padStart(8)} ${String(median("delivered")).padStart(11)} ${String(median("nextDueUs")).padStart(13)}${cpu}`,
    );
  }
} finally {
  await deployment.cleanup();
}

/**
 * `n` webhooks of the bench's business that never get a delivery, copied from its one webhook: ids
 * before and after its id (every other one each way), an endpoint of their own each, and an event
 * the backlog never has (prescriptions: it creates appointments).
 */
async function addIdleWebhooks(n) {
  if (n <= 0) return;
  const columns =
    "business_id, protocol, state, state_changed_at, client_id, created_by, updated_by, created_at, updated_at";
  const copied = (id, endpoint) =>
    `INSERT INTO subscription (id, endpoint, endpoint_key, event_names, ${columns})
     SELECT ${id}, ${endpoint}, ${endpoint}, '["prescription.created"]', ${columns} FROM (SELECT * FROM subscription LIMIT 1) s`;
  if (postgresUrl) {
    const admin = new pg.Client({ connectionString: postgresUrl, options: `-c search_path=${deployment.schema}` });
    await admin.connect();
    try {
      const id = "CASE WHEN i % 2 = 0 THEN 'sub_00idle' ELSE 'sub_zzidle' END || lpad(i::text, 8, '0')";
      await admin.query(`${copied(id, "'https://idle-' || i || '.example.com/'")}, generate_series(1, ${n}) i`);
      await admin.query("ANALYZE subscription");
    } finally {
      await admin.end();
    }
    return;
  }
  const raw = new Database(path.join(deployment.dataDir, "carehooks.db"));
  try {
    const id = "CASE WHEN i % 2 = 0 THEN 'sub_00idle' ELSE 'sub_zzidle' END || printf('%08d', i)";
    raw.exec(
      `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ${n})
       ${copied(id, "'https://idle-' || i || '.example.com/'").replace("FROM (SELECT", "FROM n, (SELECT")}`,
    );
  } finally {
    raw.close();
  }
}

/** Claims and completes the whole backlog with `dist`'s statements, on a fresh copy of the database. */
async function drainOnce(dist) {
  const dir = mkdtempSync(path.join(os.tmpdir(), "carehooks-queue-micro-"));
  try {
    return await drainCopy(dist, dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * PostgreSQL: claims and completes what is due in the deployment's schema with `dist`'s statements,
 * connected as a worker is.
 */
async function drainSchema(dist) {
  const { openDatabase } = await import(pathToFileURL(path.join(dist, "store/open.js")).href);
  const url = new URL(postgresUrl);
  url.searchParams.set("schema", deployment.schema);
  const adapter = openDatabase(url.toString(), { poolSize: 2, postgresAsynchronousCommits: true });
  const before = cpuSecondsOfComm("postgres");
  const round = await drainWith(dist, adapter);
  // Read before the pool closes: a backend that has exited but is not yet reaped counts nowhere.
  const used = cpuSecondsOfComm("postgres") - before;
  round.nextDueUs = await nextDueUs(dist, adapter);
  await adapter.close();
  // Drained: nothing in flight, so no in-flight count to keep. The next drain starts from a table of the same size.
  const admin = new pg.Client({ connectionString: postgresUrl });
  await admin.connect();
  try {
    await admin.query(`TRUNCATE "${deployment.schema}".attempt, "${deployment.schema}".delivery`);
  } finally {
    await admin.end();
  }
  // No postgres process in this machine's /proc (a server elsewhere, or in another PID namespace): no CPU figure.
  const visible = before > 0;
  return { ...round, postgresCpuUs: visible ? Math.round((used * 1e6) / round.delivered) : undefined };
}

async function drainCopy(dist, dir) {
  for (const file of ["carehooks.db", "carehooks.db-wal"]) {
    try {
      cpSync(path.join(deployment.dataDir, file), path.join(dir, file));
    } catch {
      // No log left after a clean stop.
    }
  }
  if (opts.analyze) {
    const raw = new Database(path.join(dir, "carehooks.db"));
    raw.exec("ANALYZE");
    if (opts["small-statistics"]) {
      raw.exec(`UPDATE sqlite_stat1 SET stat = '30' || substr(stat, instr(stat || ' ', ' ')) WHERE stat NOT LIKE '0%'`);
    }
    raw.close();
  }
  const { openDatabase } = await import(pathToFileURL(path.join(dist, "store/open.js")).href);
  const adapter = openDatabase(`sqlite://${path.join(dir, "carehooks.db")}`, {
    sqliteSynchronous: opts.synchronous,
  });
  try {
    const round = await drainWith(dist, adapter);
    return { ...round, nextDueUs: await nextDueUs(dist, adapter) };
  } finally {
    await adapter.close();
  }
}

/** Drains what is due through `adapter` with `dist`'s claim and completion; the caller closes it. */
async function drainWith(dist, adapter) {
  const load = (file) => import(pathToFileURL(path.join(dist, file)).href);
  const [{ claimBatch }, { completeBatch }, { beat }] = await Promise.all([
    load("store/queue/claim.js"),
    load("store/queue/complete.js"),
    load("store/queue/workers.js"),
  ]);
  const me = { id: "wrk_queue_micro", host: os.hostname(), pid: process.pid };
  await beat(adapter, me, { timeoutMs: 3_600_000, leaseMs: 60_000 });
  const limits = { limit: Number(opts.batch), perEndpoint: 10, leaseMs: 60_000, workerId: me.id };
  let claimMs = 0;
  let completeMs = 0;
  let delivered = 0;
  let claims = 0;
  for (;;) {
    let t0 = performance.now();
    const { claimed } = await claimBatch(adapter, limits);
    claimMs += performance.now() - t0;
    claims += 1;
    if (claimed.length === 0) break;
    delivered += claimed.length;
    const now = Date.now();
    const completions = claimed.map((delivery) => ({
      deliveryId: delivery.id,
      subscriptionId: delivery.subscription_id,
      leaseToken: delivery.lease_token,
      outcome: { kind: "succeeded" },
      decidedAt: now,
      statusCode: 200,
      error: null,
      attempt: {
        id: `att_${delivery.id}`,
        delivery_id: delivery.id,
        n: delivery.attempts + 1,
        started_at: now,
        duration_ms: 1,
        request_headers: "{}",
        request_meta: '{"v":"0.1.0","k":["k1"],"h":[]}',
        response_status: 200,
        response_body: "",
        error: null,
      },
    }));
    t0 = performance.now();
    await completeBatch(adapter, completions);
    completeMs += performance.now() - t0;
  }
  return { claimUs: (claimMs * 1000) / delivered, completeUs: (completeMs * 1000) / delivered, claims, delivered };
}

/** What an idle dispatcher reads before each sleep, nothing being due now: the median of 20, µs. */
async function nextDueUs(dist, adapter) {
  const { nextDueIn } = await import(pathToFileURL(path.join(dist, "store/queue/claim.js")).href);
  const times = [];
  for (let i = 0; i < 20; i += 1) {
    const t0 = performance.now();
    await nextDueIn(adapter);
    times.push((performance.now() - t0) * 1000);
  }
  return Math.round(summarize(times).p50);
}
