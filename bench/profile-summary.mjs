#!/usr/bin/env node
// Summarises a V8 .cpuprofile (from `node bench/run.mjs --cpu-prof DIR`): self time by function,
// by file/package, and inclusive time of chosen carehooks functions.
// Usage: node bench/profile-summary.mjs FILE.cpuprofile [--top 30] [--match REGEX] [--between REGEX] [--per N] [--from MS] [--window MS]
//   --match: also list the inclusive time of every function whose "name file" matches REGEX
//   (inclusive time is per synchronous stack: work continued after an await is not included).
//   --between: count only the samples from the first to the last whose stack has a function
//   matching REGEX (e.g. "send .*sender" for the drain, leaving out start-up and shutdown).
//   --per: also print microseconds per unit of work (e.g. the deliveries of the drain).
//   --from MS: leave out the first MS milliseconds from the first sample counted (e.g. the cold
//   start of a drain, to see it warmed up); --window then counts from there.
//   --window MS: count only the first MS milliseconds from the first sample counted (e.g. the
//   cold start of a drain, while V8 has compiled little of it).
import { readFileSync } from "node:fs";

const file = process.argv[2];
const top = Number(process.argv[process.argv.indexOf("--top") + 1]) || 30;
const option = (name) => (process.argv.includes(name) ? process.argv[process.argv.indexOf(name) + 1] : undefined);
const match = option("--match") === undefined ? undefined : new RegExp(option("--match"));
const between = option("--between") === undefined ? undefined : new RegExp(option("--between"));
const per = Number(option("--per")) || undefined;
const windowMs = Number(option("--window")) || undefined;
const fromMs = Number(option("--from")) || undefined;
if (!file) {
  process.stderr.write("usage: node bench/profile-summary.mjs FILE.cpuprofile [--top N]\n");
  process.exit(2);
}
const profile = JSON.parse(readFileSync(file, "utf8"));
const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
const parent = new Map();
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

// --between: the first and last sample whose stack has a matching function
let first = 0;
let last = profile.samples.length - 1;
if (between) {
  const hits = (id) => {
    for (let cur = id; cur !== undefined; cur = parent.get(cur)) {
      const cf = nodes.get(cur).callFrame;
      if (between.test(`${cf.functionName || "(anonymous)"}  ${cf.url}`)) return true;
    }
    return false;
  };
  first = profile.samples.findIndex(hits);
  last = profile.samples.findLastIndex(hits);
  if (first === -1) {
    console.error(`no sample's stack has a function matching --between ${between} (it is tested against "name  url")`);
    process.exit(1);
  }
}
if (fromMs !== undefined) {
  let elapsed = 0;
  while (first < last && elapsed <= fromMs * 1000) {
    first += 1;
    elapsed += profile.timeDeltas[first] ?? 0;
  }
}
if (windowMs !== undefined) {
  let elapsed = 0;
  for (let i = first + 1; i <= last; i++) {
    elapsed += profile.timeDeltas[i] ?? 0;
    if (elapsed > windowMs * 1000) {
      last = i - 1;
      break;
    }
  }
}

// self time per node from samples and timeDeltas (µs)
const self = new Map();
for (let i = first; i <= last; i++) {
  const id = profile.samples[i];
  self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
}
const total = [...self.values()].reduce((a, b) => a + b, 0);

function where(cf) {
  const url = cf.url || "";
  if (!url) return "(native/vm)";
  const m = url.match(/node_modules\/((?:@[^/]+\/)?[^/]+)/);
  if (m) return m[1];
  const d = url.match(/packages\/server\/dist\/(.*)$/);
  if (d) return `carehooks:${d[1]}`;
  if (url.startsWith("node:")) return url;
  return url;
}

const byFn = new Map();
const byFile = new Map();
for (const [id, us] of self) {
  const cf = nodes.get(id).callFrame;
  const fn = `${cf.functionName || "(anonymous)"}  ${where(cf)}:${cf.lineNumber + 1}`;
  byFn.set(fn, (byFn.get(fn) ?? 0) + us);
  const w = where(cf);
  byFile.set(w, (byFile.get(w) ?? 0) + us);
}

// inclusive time: for every sample, walk up the stack once per distinct carehooks function
const inclusive = new Map();
for (const [id, us] of self) {
  const seen = new Set();
  for (let cur = id; cur !== undefined; cur = parent.get(cur)) {
    const cf = nodes.get(cur).callFrame;
    const w = where(cf);
    const key = `${cf.functionName || "(anonymous)"}  ${w}`;
    if (!w.startsWith("carehooks:") && !match?.test(key)) continue;
    if (seen.has(key)) continue;
    seen.add(key);
    inclusive.set(key, (inclusive.get(key) ?? 0) + us);
  }
}

const pct = (us) =>
  `${((us / total) * 100).toFixed(1).padStart(5)}%${per ? `  ${(us / per).toFixed(1).padStart(6)} µs` : ""}`;
const print = (title, map, n) => {
  process.stdout.write(`\n${title}\n`);
  for (const [k, us] of [...map].sort((a, b) => b[1] - a[1]).slice(0, n)) process.stdout.write(`${pct(us)}  ${k}\n`);
};
process.stdout.write(`profile: ${(total / 1e6).toFixed(2)} s of samples\n`);
if (per) {
  const idle = [...self].filter(([id]) => nodes.get(id).callFrame.functionName === "(idle)");
  const busy = total - idle.reduce((sum, [, us]) => sum + us, 0);
  process.stdout.write(`busy ${(busy / per).toFixed(1)} µs per unit (${per} units)\n`);
}
print("self time by package / file", byFile, top);
print("self time by function", byFn, top);
print("inclusive time of carehooks functions", new Map([...inclusive].filter(([k]) => k.includes("carehooks:"))), top);
if (match)
  print(`inclusive time of functions matching ${match}`, new Map([...inclusive].filter(([k]) => match.test(k))), top);
