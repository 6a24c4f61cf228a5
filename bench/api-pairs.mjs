#!/usr/bin/env node
// API-only create rates of variants of the API process on SQLite, in rounds whose order rotates:
// for a change to the create path too small for a full run to show (docs/benchmarks-history.md,
// the session of 2026-12-07 from 20:22). A variant is a build (the path of a built tree's
// `packages/server/bin/carehooks.js`, e.g. a second worktree with its dependencies installed, or
// "-" for this tree's) and any environment for its `serve`.
//
// Usage: node bench/api-pairs.mjs [--variant NAME=BIN[,KEY=VALUE...]]... [--rounds 3] [--warm 3000]
//        [--events 15000] [--concurrency 16]
//   e.g. --variant before=../base/packages/server/bin/carehooks.js --variant after=-
//        --variant full=-,CAREHOOKS_SQLITE_SYNCHRONOUS=FULL --variant normal=-,CAREHOOKS_SQLITE_SYNCHRONOUS=NORMAL
//   Default: this tree's build twice ("a" and "b"), which shows the spread between rounds of one build.
//   A BIN is resolved against the current directory; values cannot hold a comma. CAREHOOKS_* settings
//   reach serve only through --variant (the bench starts serve with its own environment).
// Each run is a fresh deployment made by this tree's CLI (its migrations; serve applies any newer ones
// of its own build at start, so run the tool from the older tree to measure a migration) and a fresh
// `serve --role api` with one webhook: --warm creates, then --events timed with the bench's client,
// --concurrency at a time; the rate counts the creates answered 201. Prints each run, then one JSON line
// with every variant's build, environment, rates, mean and failed creates; exits 1 if any create failed.
import { existsSync } from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";
import { Api, prepareDeployment } from "./lib/carehooks.mjs";
import { BIN } from "./lib/deps.mjs";
import { cpuSecondsOf } from "./lib/procs.mjs";
import { apiOnlyCreates, createMany } from "./lib/scenarios.mjs";

const { values: opt } = parseArgs({
  options: {
    variant: { type: "string", multiple: true, default: ["a=-", "b=-"] },
    rounds: { type: "string", default: "3" },
    warm: { type: "string", default: "3000" },
    events: { type: "string", default: "15000" },
    concurrency: { type: "string", default: "16" },
  },
});

function fail(message) {
  process.stderr.write(`api-pairs: ${message}\n`);
  process.exit(2);
}

/** Settings the run itself sets: a variant changing them would point serve elsewhere. */
const OWN = new Set(["CAREHOOKS_DATA_DIR", "CAREHOOKS_DATABASE_URL", "CAREHOOKS_PORT"]);
const variants = opt.variant.map((spec) => {
  const [name, rest] = spec.split(/=(.*)/s);
  if (!name || rest === undefined) fail(`--variant ${spec}: expected NAME=BIN[,KEY=VALUE...]`);
  const [bin, ...pairs] = rest.split(",");
  const env = {};
  for (const pair of pairs) {
    const [key, value] = pair.split(/=(.*)/s);
    if (!key || value === undefined) fail(`--variant ${spec}: "${pair}" is not KEY=VALUE`);
    if (OWN.has(key)) fail(`--variant ${spec}: ${key} is set by the run itself`);
    env[key] = value;
  }
  const resolved = bin === "-" || bin === "" ? BIN : path.resolve(bin);
  if (!existsSync(resolved)) fail(`--variant ${spec}: no build at ${resolved}`);
  return { name, bin: resolved, env };
});
if (new Set(variants.map((v) => v.name)).size !== variants.length) fail("two variants have the same name");
const [rounds, warm, events, concurrency] = [opt.rounds, opt.warm, opt.events, opt.concurrency].map(Number);
for (const [flag, value] of Object.entries({ rounds, warm, events, concurrency })) {
  if (!Number.isInteger(value) || value < (flag === "warm" ? 0 : 1)) fail(`--${flag} must be a whole number`);
}

/** The deployment of the run in progress: removed, with its server, if the tool is stopped from outside. */
let current;
for (const signal of ["SIGINT", "SIGTERM"]) {
  process.once(signal, () => {
    void (current?.cleanup() ?? Promise.resolve()).finally(() => process.exit(130));
  });
}

/** One run: a fresh deployment and API process, --warm creates, then --events timed. */
async function run({ name, bin, env }) {
  const dep = await prepareDeployment({ kind: "sqlite" });
  current = dep;
  try {
    const { child, port } = await dep.serve("api", name, env, bin);
    const api = new Api(port, 64);
    try {
      await api.login(dep.clients[0]);
      await api.createWebhook("http://127.0.0.1:9/hook/pairs", `whsec_${Buffer.alloc(32, 7).toString("base64")}`);
      const warmed = await createMany(api, warm, concurrency, 800_000_000);
      const measured = await apiOnlyCreates({
        api,
        events,
        concurrency,
        cpuSources: { server: () => cpuSecondsOf(child.pid) },
        offset: 3_000_000,
      });
      return {
        rate: measured.rate,
        cpuMsPerCreate: measured.cpuMsPerEvent?.server,
        failed: warmed.errors.length + measured.createErrors,
        firstError: warmed.errors[0] ?? measured.firstError,
        serverErrors: child.errorCount ?? 0,
      };
    } finally {
      await api.close();
    }
  } finally {
    await dep.cleanup();
    current = undefined;
  }
}

const results = Object.fromEntries(
  variants.map(({ name, bin, env }) => [name, { bin, env, rates: [], cpuMsPerCreate: [], failed: 0 }]),
);
for (let round = 0; round < rounds; round++) {
  // Rotated each round, so no variant always runs first or last.
  const order = variants.map((_, i) => variants[(i + round) % variants.length]);
  for (const variant of order) {
    const { rate, cpuMsPerCreate, failed, firstError, serverErrors } = await run(variant);
    const result = results[variant.name];
    result.rates.push(rate);
    result.cpuMsPerCreate.push(cpuMsPerCreate);
    result.failed += failed;
    const notes = [
      ...(cpuMsPerCreate === undefined ? [] : [`server ${cpuMsPerCreate} ms CPU a create`]),
      ...(failed ? [`${failed} failed (${firstError})`] : []),
      ...(serverErrors ? [`${serverErrors} error lines from serve`] : []),
    ];
    console.log(`round ${round + 1} ${variant.name}: ${rate} creates/s${notes.length ? `; ${notes.join(", ")}` : ""}`);
  }
}
for (const result of Object.values(results)) {
  result.mean = Math.round(result.rates.reduce((sum, rate) => sum + rate, 0) / result.rates.length);
  if (result.failed > 0) process.exitCode = 1;
}
console.log(JSON.stringify({ rounds, warm, events, concurrency, variants: results }));
