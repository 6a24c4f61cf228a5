// Reference: the smallest set-based delivery loop on SQLite, one thread, with none of carehooks'
// features (no breaker, caps per endpoint, retries schedule, key rotation, attempt detail, metrics
// or logs). It is the floor of the design, measured beside carehooks and the peers: how fast this
// machine drains a backlog from one SQLite file through the same signing and undici pool, so the
// engine's own overhead can be read off as the gap. Driven over IPC (common.mjs): enqueue, start,
// close; its database is a temporary file, removed at close.
//
// The loop: claim up to the free slots in one UPDATE … RETURNING (its own commit), refill once half
// the slots are free, and record outcomes (the job's status and an attempt row) in one transaction
// every 10 ms, synchronous=FULL as carehooks' default.
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { betterSqliteVersion, BetterSqlite3 as Database } from "../lib/deps.mjs";
import { answerPeerCalls, enqueueBacklog, webhookPoster } from "./common.mjs";

const FLUSH_MS = 10;

let dir;
let db;
let poster;
let loop;

const SCHEMA = `
CREATE TABLE job (id INTEGER PRIMARY KEY, event_id TEXT NOT NULL, payload TEXT NOT NULL,
  status TEXT NOT NULL DEFAULT 'pending', lease TEXT, attempts INTEGER NOT NULL DEFAULT 0,
  next_at INTEGER NOT NULL);
CREATE INDEX job_due ON job (next_at) WHERE status = 'pending';
CREATE TABLE attempt (id INTEGER PRIMARY KEY, job_id INTEGER NOT NULL, n INTEGER NOT NULL,
  status_code INTEGER, error TEXT, at INTEGER NOT NULL);
CREATE INDEX attempt_job ON attempt (job_id);`;

/** The drain: `concurrency` requests in flight, claims as slots free, outcomes written in batches. */
function startLoop(concurrency) {
  const claim = db.prepare(`UPDATE job SET status = 'in_flight', lease = @lease, attempts = attempts + 1
    WHERE id IN (SELECT id FROM job WHERE status = 'pending' AND next_at <= @now ORDER BY next_at LIMIT @n)
    RETURNING id, event_id, payload, attempts`);
  const done = db.prepare(`UPDATE job SET status = @status, lease = NULL, next_at = @next
    WHERE id = @id AND lease = @lease`);
  const attempt = db.prepare(
    "INSERT INTO attempt (job_id, n, status_code, error, at) VALUES (@id, @n, @code, @error, @at)",
  );
  const complete = db.transaction((outcomes) => {
    for (const o of outcomes) {
      done.run({
        id: o.id,
        lease: o.lease,
        status: o.ok ? "succeeded" : "pending",
        next: o.ok ? 0 : Date.now() + 1000,
      });
      attempt.run({ id: o.id, n: o.n, code: o.code, error: o.error, at: o.at });
    }
  });
  const state = { inFlight: 0, outcomes: [], timer: undefined, stopped: false, idle: undefined };
  let leases = 0;

  const flush = () => {
    state.timer = undefined;
    const batch = state.outcomes;
    state.outcomes = [];
    if (batch.length > 0) complete(batch);
    refill();
  };
  const send = async (row, lease) => {
    let code = null;
    let error = null;
    try {
      await poster.post({ eventId: row.event_id, body: row.payload });
      code = 200;
    } catch (e) {
      error = String(e.message ?? e);
    }
    state.inFlight -= 1;
    state.outcomes.push({ id: row.id, lease, n: row.attempts, ok: code === 200, code, error, at: Date.now() });
    state.timer ??= setTimeout(flush, FLUSH_MS);
    refill();
  };
  const refill = () => {
    if (state.stopped) return;
    const free = concurrency - state.inFlight;
    if (free < Math.ceil(concurrency / 2)) return;
    const lease = `l${leases++}`;
    const rows = claim.all({ lease, now: Date.now(), n: free });
    for (const row of rows) {
      state.inFlight += 1;
      void send(row, lease);
    }
    if (rows.length === 0 && state.inFlight === 0 && state.outcomes.length === 0) {
      // Nothing due: look again shortly (a backlog drain ends here).
      state.idle = setTimeout(refill, 50);
    }
  };
  refill();
  return {
    async stop() {
      state.stopped = true;
      clearTimeout(state.idle);
      while (state.inFlight > 0) await new Promise((r) => setTimeout(r, 10));
      clearTimeout(state.timer);
      complete(state.outcomes);
      state.outcomes = [];
    },
  };
}

answerPeerCalls(
  {
    async enqueue({ events, tag }) {
      dir = mkdtempSync(path.join(os.tmpdir(), "carehooks-bench-loop-"));
      db = new Database(path.join(dir, "loop.db"));
      db.pragma("journal_mode = WAL");
      db.pragma("synchronous = FULL");
      db.exec(SCHEMA);
      const insert = db.prepare("INSERT INTO job (event_id, payload, next_at) VALUES (?, ?, ?)");
      const add = db.transaction((jobs) => {
        for (const job of jobs) insert.run(job.eventId, JSON.stringify(job.payload), Date.now());
      });
      return enqueueBacklog(events, tag, async (jobs) => add(jobs));
    },
    async start({ url, key, concurrency }) {
      poster = webhookPoster({ url, key, connections: concurrency, version: "bench-sqlite-loop" });
      loop = startLoop(concurrency);
      return true;
    },
    async close() {
      await loop?.stop();
      await poster?.close();
      const counts = db?.prepare("SELECT status, count(*) AS n FROM job GROUP BY status").all();
      db?.close();
      if (dir) rmSync(dir, { recursive: true, force: true });
      return { counts: Object.fromEntries((counts ?? []).map((c) => [c.status, c.n])) };
    },
  },
  { version: betterSqliteVersion },
);
