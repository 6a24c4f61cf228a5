#!/usr/bin/env node
// API-only create rates of two or more variants of the API process on SQLite, in alternating rounds:
// for a change to the create path too small for a full run to show (docs/benchmarks-history.md,
// the session of 2026-12-07 from 20:22). A variant is another build (the path of its
// `packages/server/bin/carehooks.js`, e.g. a second worktree) and/or environment for `serve`.
//
// Usage: node bench/api-pairs.mjs [--variant NAME=BIN[,KEY=VALUE...]]... [--rounds 3] [--warm 3000]
//        [--events 15000] [--concurrency 16]
//   --variant: NAME, then the bin to run ("-" for this tree's) and any environment for serve, e.g.
//     --variant before=/tmp/wt-base/packages/server/bin/carehooks.js --variant after=-
//     --variant full=-,CAREHOOKS_SQLITE_SYNCHRONOUS=FULL --variant normal=-,CAREHOOKS_SQLITE_SYNCHRONOUS=NORMAL
//   Default: this tree's build twice ("a" and "b"), which shows the spread between rounds of one build.
// Each round starts `serve --role api` afresh for every variant, on a fresh deployment made by this
// tree's CLI (so the variants must share its schema), with one webhook; it sends --warm creates, then
// times --events creates with the bench's client (--concurrency at a time). The order of the variants
// alternates round by round. Prints one line per run, then one JSON line: each variant's rates and mean.
import { parseArgs } from "node:util";
import { Api, prepareDeployment, startServe } from "./lib/carehooks.mjs";
import { BIN } from "./lib/deps.mjs";
import { stopChild } from "./lib/procs.mjs";
import { createMany } from "./lib/scenarios.mjs";

const { values: opt } = parseArgs({
  options: {
    variant: { type: "string", multiple: true, default: ["a=-", "b=-"] },
    rounds: { type: "string", default: "3" },
    warm: { type: "string", default: "3000" },
    events: { type: "string", default: "15000" },
    concurrency: { type: "string", default: "16" },
  },
});
const variants = opt.variant.map((spec) => {
  const [name, rest = "-"] = spec.split(/=(.*)/s);
  const [bin, ...pairs] = rest.split(",");
  const env = Object.fromEntries(pairs.map((pair) => pair.split(/=(.*)/s)));
  return { name, bin: bin === "-" || bin === "" ? BIN : bin, env };
});
const [rounds, warm, events, concurrency] = [opt.rounds, opt.warm, opt.events, opt.concurrency].map(Number);

/** One run: a fresh deployment and API process, --warm creates, then --events timed. */
async function run({ name, bin, env }) {
  const dep = await prepareDeployment({ kind: "sqlite" });
  try {
    const { child, port } = await startServe({ ...dep.env, CAREHOOKS_LOG_LEVEL: "warn", ...env }, "api", name, bin);
    const api = new Api(port, 64);
    try {
      await api.login(dep.clients[0]);
      await api.createWebhook("http://127.0.0.1:9/hook/pairs", `whsec_${Buffer.alloc(32, 7).toString("base64")}`);
      const warmed = await createMany(api, warm, concurrency, 800_000_000);
      const started = performance.now();
      const measured = await createMany(api, events, concurrency, 3_000_000);
      const seconds = (performance.now() - started) / 1000;
      return { rate: Math.round(events / seconds), failed: warmed.errors.length + measured.errors.length };
    } finally {
      await api.close();
      await stopChild(child);
    }
  } finally {
    await dep.cleanup();
  }
}

const results = Object.fromEntries(variants.map(({ name }) => [name, { rates: [], failed: 0 }]));
for (let round = 0; round < rounds; round++) {
  for (const variant of round % 2 === 0 ? variants : [...variants].reverse()) {
    const { rate, failed } = await run(variant);
    results[variant.name].rates.push(rate);
    results[variant.name].failed += failed;
    console.log(`round ${round + 1} ${variant.name}: ${rate} creates/s${failed ? `, ${failed} failed` : ""}`);
  }
}
for (const result of Object.values(results)) {
  result.mean = Math.round(result.rates.reduce((sum, rate) => sum + rate, 0) / result.rates.length);
}
console.log(JSON.stringify({ rounds, warm, events, concurrency, variants: results }));
