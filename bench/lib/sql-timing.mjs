// Preloaded into carehooks processes by `node bench/run.mjs --sql-profile DIR` (node --import):
// times every better-sqlite3 statement (prepare, run, all, get, iterate; time on the main thread,
// fsync included) and every pg query (promise form; time from send to result, so lock waits and
// round trips are included) by SQL text, and writes DIR/sql-<pid>.json at exit.
// Diagnostic only: it adds a little overhead of its own.
import { writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { isMainThread, threadId } from "node:worker_threads";

const dir = process.env.CAREHOOKS_BENCH_SQL_PROFILE_DIR;
const require = createRequire(path.join(process.cwd(), "packages/server/package.json"));
const Database = require("better-sqlite3");

const stats = new Map();
const norm = (sql) =>
  sql
    .replace(/\s+/g, " ")
    .replace(/\((\s*\?\s*,)+\s*\?\s*\)/g, "(?…)")
    .replace(/(\(\?…\)\s*,\s*)+\(\?…\)/g, "(?…), …")
    .trim();
function record(kind, sql, ms) {
  const key = `${kind} ${norm(sql)}`;
  const s = stats.get(key) ?? { n: 0, ms: 0, max: 0 };
  s.n += 1;
  s.ms += ms;
  if (ms > s.max) s.max = ms;
  stats.set(key, s);
}

const probe = new Database(":memory:");
const StatementProto = Object.getPrototypeOf(probe.prepare("select 1"));
probe.close();
for (const method of ["run", "all", "get", "iterate"]) {
  const original = StatementProto[method];
  StatementProto[method] = function timed(...args) {
    const t0 = performance.now();
    try {
      return original.apply(this, args);
    } finally {
      record(method, this.source, performance.now() - t0);
    }
  };
}
const prepare = Database.prototype.prepare;
Database.prototype.prepare = function timedPrepare(sql, ...rest) {
  const t0 = performance.now();
  try {
    return prepare.call(this, sql, ...rest);
  } finally {
    record("prepare", sql, performance.now() - t0);
  }
};

const pg = require("pg");
const query = pg.Client.prototype.query;
pg.Client.prototype.query = function timedQuery(config, values, callback) {
  const text = typeof config === "string" ? config : config?.text;
  // pg.Pool#query (named prepared statements) calls back instead of returning a promise.
  const last = typeof values === "function" ? "values" : typeof callback === "function" ? "callback" : undefined;
  if (text !== undefined && last !== undefined) {
    const t0 = performance.now();
    const given = last === "values" ? values : callback;
    const timed = (...args) => {
      record("pg", text, performance.now() - t0);
      return given(...args);
    };
    return last === "values" ? query.call(this, config, timed) : query.call(this, config, values, timed);
  }
  const result = query.call(this, config, values, callback);
  if (text === undefined || typeof result?.then !== "function") return result;
  const t0 = performance.now();
  const done = () => record("pg", text, performance.now() - t0);
  result.then(done, done);
  return result;
};

const started = performance.now();
process.on("exit", () => {
  const role = isMainThread
    ? process.argv.includes("--role")
      ? process.argv[process.argv.indexOf("--role") + 1]
      : "cli"
    : "dispatcher thread";
  if (!dir) return;
  const rows = [...stats].map(([sql, s]) => ({
    sql,
    n: s.n,
    ms: Math.round(s.ms * 10) / 10,
    maxMs: Math.round(s.max * 100) / 100,
  }));
  rows.sort((a, b) => b.ms - a.ms);
  writeFileSync(
    path.join(dir, `sql-${process.pid}${isMainThread ? "" : `-${threadId}`}.json`),
    JSON.stringify(
      { pid: process.pid, role, wallMs: Math.round(performance.now() - started), statements: rows },
      null,
      2,
    ),
  );
});
