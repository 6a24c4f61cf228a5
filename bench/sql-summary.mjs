#!/usr/bin/env node
// Prints the statement timings written by `node bench/run.mjs --sql-profile DIR`, one block per process and thread.
// Usage: node bench/sql-summary.mjs DIR [--top 15]
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";

const dir = process.argv[2];
const top = Number(process.argv[process.argv.indexOf("--top") + 1]) || 15;
if (!dir) {
  process.stderr.write("usage: node bench/sql-summary.mjs DIR [--top N]\n");
  process.exit(2);
}
for (const file of readdirSync(dir).filter((f) => /^sql-\d+(-\d+)?\.json$/.test(f))) {
  const j = JSON.parse(readFileSync(path.join(dir, file), "utf8"));
  const total = j.statements.reduce((a, s) => a + s.ms, 0);
  if (total < 50) continue;
  const commits = j.statements.filter((s) => /^(run|pg) commit$/i.test(s.sql)).reduce((a, s) => a + s.n, 0);
  process.stdout.write(
    `\n${file} role=${j.role ?? "?"} wall ${(j.wallMs / 1000).toFixed(1)} s, statements ${(total / 1000).toFixed(2)} s, commits ${commits}\n`,
  );
  process.stdout.write("    total ms      calls   avg ms   max ms  statement\n");
  for (const s of j.statements.slice(0, top)) {
    process.stdout.write(
      `${s.ms.toFixed(0).padStart(13)} ${String(s.n).padStart(10)} ${(s.ms / s.n).toFixed(3).padStart(8)} ${s.maxMs.toFixed(1).padStart(8)}  ${s.sql.slice(0, 150)}\n`,
    );
  }
}
