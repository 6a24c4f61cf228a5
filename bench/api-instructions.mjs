#!/usr/bin/env node
// Instructions a create costs the API process, counted by valgrind's callgrind, for comparing two
// builds of the create path: the bench's rates on a shared 2-core machine move by a third between
// minutes. Between runs of one build the main thread's event loop's count moved by about 6 % and
// SQLite's own by about 4 %, so compare builds on those; the whole process's count moved by up to
// 42 % (V8 compiling on its helper threads; 22 % with --node-flags=--single-threaded) (2026-12-07).
// Count each build two or more times, side by side with the other.
//
// Usage: node bench/api-instructions.mjs [--warm 2000] [--events 3000] [--concurrency 16] [--out DIR]
//        [--node-flags=--single-threaded]
// Starts `serve --role api` on a fresh SQLite deployment under callgrind (Debian's valgrind),
// with one webhook; sends --warm creates, zeroes the counters (callgrind_control -z), sends
// --events creates, dumps (callgrind_control -d), and prints the dump's instructions per create,
// every thread of the process together, and the main thread's event loop alone (V8's compiler and
// collector threads left out: they vary more from run to run), and by object file (node, better-sqlite3's
// SQLite, libc; V8's generated code as "???"). Under valgrind the process runs some 50 times slower,
// one thread at a time, so batches and V8's tiering differ from a real run: compare builds with
// it, never read it as time.
import { execFileSync, spawn } from "node:child_process";
import { once } from "node:events";
import { readdirSync, readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { Api, prepareDeployment } from "./lib/carehooks.mjs";
import { BIN, undici } from "./lib/deps.mjs";
import { freePort } from "./lib/procs.mjs";
import { createMany } from "./lib/scenarios.mjs";

const { values: opt } = parseArgs({
  options: {
    warm: { type: "string", default: "2000" },
    events: { type: "string", default: "3000" },
    concurrency: { type: "string", default: "16" },
    out: { type: "string" },
    "node-flags": { type: "string", default: "" },
  },
});
const warm = Number(opt.warm);
const events = Number(opt.events);
const concurrency = Number(opt.concurrency);
const out = opt.out ?? (await mkdtemp(path.join(os.tmpdir(), "carehooks-callgrind-")));

const dep = await prepareDeployment({ kind: "sqlite" });
const port = await freePort();
const child = spawn(
  "valgrind",
  [
    "--tool=callgrind",
    `--callgrind-out-file=${out}/callgrind.out.%p`,
    process.execPath,
    ...opt["node-flags"].split(" ").filter(Boolean),
    BIN,
    "serve",
    "--role",
    "api",
  ],
  { env: { ...dep.env, CAREHOOKS_PORT: String(port) }, stdio: ["ignore", "ignore", "pipe"] },
);
let stderr = "";
child.stderr.on("data", (chunk) => {
  stderr = (stderr + chunk).slice(-4000);
});

async function healthy() {
  for (let i = 0; i < 1200; i++) {
    if (child.exitCode !== null) throw new Error(`serve exited under valgrind:\n${stderr}`);
    try {
      const res = await undici.request(`http://127.0.0.1:${port}/healthz`);
      await res.body.dump();
      if (res.statusCode === 200) return;
    } catch {}
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new Error(`serve not healthy under valgrind within 5 minutes:\n${stderr}`);
}

/** Instructions by the object file they ran in (node, better-sqlite3, libc; "???" for V8's generated code), callees left out. */
function selfByObject(text) {
  const names = new Map();
  const totals = {};
  let object = "???";
  let afterCall = false;
  for (const line of text.split("\n")) {
    const named = /^(c?ob)=\((\d+)\)(?: (.*))?$/.exec(line);
    if (named) {
      const [, kind, id, name] = named;
      if (name) names.set(id, path.basename(name));
      if (kind === "ob") object = names.get(id) ?? id;
      continue;
    }
    if (line.startsWith("calls=")) {
      afterCall = true;
      continue;
    }
    const cost = /^[+\-*\d]\S*\s+(\d+)/.exec(line);
    if (!cost) continue;
    // The line after calls= is the call's inclusive cost, counted where it was spent.
    if (afterCall) afterCall = false;
    else totals[object] = (totals[object] ?? 0) + Number(cost[1]);
  }
  return totals;
}

const control = (flag) => execFileSync("callgrind_control", [flag, String(child.pid)], { encoding: "utf8" });

try {
  await healthy();
  const api = new Api(port, 64);
  await api.login(dep.clients[0]);
  await api.createWebhook("http://127.0.0.1:9/hook/callgrind", `whsec_${Buffer.alloc(32, 7).toString("base64")}`);
  const warmed = await createMany(api, warm, concurrency, 800_000_000);
  control("-z");
  const measured = await createMany(api, events, concurrency, 3_000_000);
  control("-d");
  await api.close();
  const failed = warmed.errors.length + measured.errors.length;
  const dumps = readdirSync(out).filter((name) => /\.\d+$/.test(name) && name.includes(`.${child.pid}`));
  let instructions = 0;
  let byObject = {};
  let eventLoop = 0;
  for (const name of dumps) {
    const file = path.join(out, name);
    const text = readFileSync(file, "utf8");
    // Only the dump asked for after the zeroing (the one at exit says "Trigger: Program termination").
    if (!/^desc: Trigger: dump/m.test(text)) continue;
    instructions += Number(/^summary: (\d+)/m.exec(text)?.[1] ?? 0);
    byObject = selfByObject(text);
    // The main thread's event loop, callees included: V8's compiler and collector threads left out.
    const annotated = execFileSync("callgrind_annotate", ["--inclusive=yes", file], { encoding: "utf8" });
    eventLoop = Number(/^\s*([\d,]+) .*SpinEventLoopInternal/m.exec(annotated)?.[1]?.replaceAll(",", "") ?? 0);
  }
  console.log(
    JSON.stringify({
      events,
      warm,
      concurrency,
      failed,
      instructions,
      perCreate: Math.round(instructions / events),
      eventLoopPerCreate: Math.round(eventLoop / events),
      perCreateByObject: Object.fromEntries(
        Object.entries(byObject)
          .sort(([, a], [, b]) => b - a)
          .map(([object, count]) => [object, Math.round(count / events)]),
      ),
      ...(opt.out === undefined ? {} : { dumps, out }),
    }),
  );
} finally {
  const exited = child.exitCode === null ? once(child, "exit") : undefined;
  child.kill("SIGTERM");
  await exited;
  await dep.cleanup();
  // Without --out the dumps are read and gone; with it they stay for callgrind_annotate.
  if (opt.out === undefined) await rm(out, { recursive: true, force: true });
}
