#!/usr/bin/env node
// Per-attempt CPU of the sender (and of the dispatcher's metric calls), against a local node:http
// receiver in a child process so only the sending side is counted. `--baseline DIR` loads a second
// build (a copy of packages/server/dist from another commit) and alternates rounds with it, so both
// see the same machine load: on a shared machine only figures from one run compare.
//
//   npm run build && node bench/sender-micro.mjs [--baseline DIR] [--sends N] [--concurrency C]
//
// A baseline: build the other commit and copy its packages/server/dist inside this checkout (for
// example to node_modules/.cache/before/dist), where its imports of undici and ipaddr.js resolve.
import { fork } from "node:child_process";
import { once } from "node:events";
import http from "node:http";
import path from "node:path";
import { PerformanceObserver, constants as perfConstants } from "node:perf_hooks";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { SERVER_DIR, undici } from "./lib/deps.mjs";
import { round, summarize } from "./lib/stats.mjs";

const HELP = `Usage: node bench/sender-micro.mjs [options]

  --baseline DIR     another build's dist directory, measured in alternate rounds as "before"
  --sends N          attempts per round (default 20000)
  --concurrency C    attempts in flight at once (default 10, the engine's per-endpoint default)
  --rounds R         rounds per variant; the median is reported (default 5)
  --response-bytes B size of the receiver's 200 body (default 16)
  --json             print the results as JSON too
`;

const { values: opts } = parseArgs({
  options: {
    baseline: { type: "string" },
    sends: { type: "string", default: "20000" },
    concurrency: { type: "string", default: "10" },
    rounds: { type: "string", default: "5" },
    "response-bytes": { type: "string", default: "16" },
    json: { type: "boolean", default: false },
    serve: { type: "string" },
    help: { type: "boolean", default: false },
  },
});

if (opts.help) {
  process.stdout.write(HELP);
  process.exit(0);
}

/** The young generation's collections (scavenges) so far: [start, duration] in ms, performance.now()'s clock. */
const scavenges = [];

// The receiver child: answers every POST with 200 and a fixed body, keep-alive.
if (opts.serve !== undefined) {
  const body = Buffer.alloc(Number(opts.serve), "x");
  const server = http.createServer((req, res) => {
    req.resume();
    req.on("end", () => res.end(body));
  });
  server.keepAliveTimeout = 60_000;
  server.listen(0, "127.0.0.1", () => process.send?.(server.address().port));
  process.on("disconnect", () => process.exit(0));
} else {
  await main();
}

async function loadBuild(dist) {
  const url = (file) => pathToFileURL(path.join(dist, file)).href;
  const [{ Sender }, { parseAllowedTargets }, { DeliveryMetrics }] = await Promise.all([
    import(url("delivery/sender.js")),
    import(url("domain/url-policy.js")),
    import(url("ops/delivery-metrics.js")),
  ]);
  return { Sender, parseAllowedTargets, Metrics: DeliveryMetrics };
}

async function main() {
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      if (entry.detail?.kind === perfConstants.NODE_PERFORMANCE_GC_MINOR)
        scavenges.push([entry.startTime, entry.duration]);
    }
  }).observe({ entryTypes: ["gc"] });
  const sends = Number(opts.sends);
  const concurrency = Number(opts.concurrency);
  const rounds = Number(opts.rounds);
  const receiver = fork(fileURLToPath(import.meta.url), ["--serve", opts["response-bytes"]], { stdio: "inherit" });
  const [port] = await once(receiver, "message");
  const url = `http://127.0.0.1:${port}/hook`;
  const payload = JSON.stringify({ service: "appointment", event: "appointment.created", event_id: "evt_1", n: 1 });
  const headers = {
    "content-type": "application/json",
    "user-agent": "carehooks/bench",
    "webhook-id": "evt_1",
    "webhook-timestamp": "1700000000",
    "webhook-signature": "v1,c2lnbmF0dXJl",
  };

  const builds = { after: await loadBuild(path.join(SERVER_DIR, "dist")) };
  if (opts.baseline) builds.before = await loadBuild(path.resolve(opts.baseline));

  const variants = [];
  const agent = new undici.Agent({ connections: 64, pipelining: 1 });
  variants.push({
    name: "raw undici.request (reference)",
    send: async () => {
      const res = await undici.request(url, { dispatcher: agent, method: "POST", headers, body: payload });
      await res.body.dump();
    },
    close: () => agent.close(),
  });
  const { origin, pathname } = new URL(url);
  const rawAgent = new undici.Agent({ connections: 64, pipelining: 1 });
  variants.push({
    name: "raw undici dispatch (reference)",
    send: () =>
      new Promise((resolve, reject) => {
        let status = 0;
        rawAgent.dispatch(
          { origin, path: pathname, method: "POST", headers, body: payload },
          {
            onConnect() {},
            onHeaders(statusCode) {
              status = statusCode;
              return true;
            },
            onData: () => true,
            onComplete: () => (status === 200 ? resolve() : reject(new Error(`HTTP ${status}`))),
            onError: reject,
          },
        );
      }),
    close: () => rawAgent.close(),
  });
  const newApiAgent = new undici.Agent({ connections: 64, pipelining: 1 });
  variants.push({
    name: "raw dispatch, onResponse* handler",
    send: () =>
      new Promise((resolve, reject) => {
        let status = 0;
        newApiAgent.dispatch(
          { origin, path: pathname, method: "POST", headers, body: payload },
          {
            onRequestStart() {},
            onResponseStart(_c, statusCode) {
              status = statusCode;
            },
            onResponseData() {},
            onResponseEnd: () => (status === 200 ? resolve() : reject(new Error(`HTTP ${status}`))),
            onResponseError: (_c, error) => reject(error),
          },
        );
      }),
    close: () => newApiAgent.close(),
  });
  for (const [label, build] of Object.entries(builds)) {
    const policy = { allowHttp: true, allowedTargets: build.parseAllowedTargets(["127.0.0.0/8"]) };
    for (const keepSuccessBody of label === "after" ? [false, true] : [false]) {
      const sender = new build.Sender({ connectTimeoutMs: 5000, requestTimeoutMs: 15_000, policy, keepSuccessBody });
      variants.push({
        name: `sender ${label}${label === "after" ? (keepSuccessBody ? " keepSuccessBody" : " (2xx dumped)") : ""}`,
        send: async () => {
          const result = await sender.send({ url, headers, body: payload });
          if (result.kind !== "response") throw new Error(`send failed: ${JSON.stringify(result)}`);
        },
        close: () => sender.close(),
      });
    }
  }

  const samples = new Map(variants.map((variant) => [variant.name, { cpu: [], rate: [], scavenge: [] }]));
  for (const variant of variants) await run(variant.send, Math.min(sends, 2000), concurrency); // warm-up
  for (let r = 0; r < rounds; r += 1) {
    for (const variant of variants) {
      const { cpuUs, wallMs, scavengeMs } = await run(variant.send, sends, concurrency);
      samples.get(variant.name).cpu.push(cpuUs / sends);
      samples.get(variant.name).rate.push((sends / wallMs) * 1000);
      samples.get(variant.name).scavenge.push((scavengeMs * 1000) / sends);
    }
  }
  for (const variant of variants) await variant.close();
  receiver.disconnect();

  const metricRows = [];
  for (const [label, build] of Object.entries(builds)) {
    metricRows.push({ name: `metrics ${label}`, ns: metricCalls(build.Metrics, rounds) });
  }

  const rows = variants.map((variant) => {
    const { cpu, rate, scavenge } = samples.get(variant.name);
    return {
      name: variant.name,
      cpuUsPerAttempt: summarize(cpu).p50,
      attemptsPerSecond: round(summarize(rate).p50),
      scavengeUsPerAttempt: summarize(scavenge).p50,
    };
  });
  console.log(`sender: ${sends} POSTs per round, ${concurrency} in flight, ${rounds} rounds, medians`);
  console.log("variant                                  CPU µs/attempt   attempts/s   scavenges µs/attempt");
  for (const row of rows) {
    console.log(
      `${row.name.padEnd(40)} ${String(row.cpuUsPerAttempt).padStart(14)} ${String(row.attemptsPerSecond).padStart(12)} ${String(row.scavengeUsPerAttempt).padStart(22)}`,
    );
  }
  console.log(
    "(scavenges: the young generation's collections in this process, which grow with what each attempt keeps alive)",
  );
  console.log(
    "\nmetrics per attempt (a count and a duration bucket; prom-client's four calls in older builds), median ns:",
  );
  for (const row of metricRows) console.log(`${row.name.padEnd(40)} ${String(row.ns).padStart(14)}`);
  if (opts.json) console.log(JSON.stringify({ sends, concurrency, rounds, rows, metricRows }, null, 2));
}

/**
 * `total` sends, `concurrency` at a time; the process's CPU time (user + system), the wall time and the
 * time its scavenges took meanwhile.
 */
async function run(send, total, concurrency) {
  let started = 0;
  const worker = async () => {
    while (started < total) {
      started += 1;
      await send();
    }
  };
  const cpu = process.cpuUsage();
  const t0 = performance.now();
  await Promise.all(Array.from({ length: concurrency }, worker));
  const t1 = performance.now();
  const used = process.cpuUsage(cpu);
  // The observer hears of the last collections a turn later.
  await new Promise((resolve) => setImmediate(resolve));
  const scavengeMs = scavenges.reduce((sum, [start, ms]) => (start >= t0 && start < t1 ? sum + ms : sum), 0);
  return { cpuUs: used.user + used.system, wallMs: t1 - t0, scavengeMs };
}

/** What the dispatcher does to metrics per attempt, timed in a tight loop. */
function metricCalls(Metrics, rounds) {
  const metrics = new Metrics();
  const plainCounts = typeof metrics.attempted === "function";
  const outcomes = ["succeeded", "retry", "failed"];
  const calls = 500_000;
  const perCall = [];
  for (let r = 0; r <= rounds; r += 1) {
    const t0 = performance.now();
    for (let i = 0; i < calls; i += 1) {
      if (plainCounts) metrics.attempted(outcomes[i % 3], (i & 1023) / 1000);
      else {
        // A build from before the plain counts (prom-client): what its dispatcher called per attempt.
        metrics.inFlight.set(i & 15);
        metrics.attempts.inc({ outcome: outcomes[i % 3] });
        metrics.attemptDuration.observe((i & 1023) / 1000);
        metrics.inFlight.set(i & 7);
      }
    }
    if (r > 0) perCall.push(((performance.now() - t0) * 1e6) / calls); // round 0 warms up
  }
  return round(summarize(perCall).p50);
}
