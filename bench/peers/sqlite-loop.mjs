// Reference loop on SQLite (loop.mjs): the backlog in a temporary file, one UPDATE … RETURNING a
// claim, each flush's outcomes (the job's status and an attempt row) in one transaction. Commits do
// not wait for the disk (synchronous=NORMAL: carehooks syncs its log off the event loop, and a bound
// should not be slower than what it bounds). The file is removed at close, or at exit.
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { betterSqliteVersion, BetterSqlite3 as Database } from "../lib/deps.mjs";
import { answerLoopCalls } from "./loop.mjs";

const SCHEMA = `
CREATE TABLE job (id INTEGER PRIMARY KEY, event_id TEXT NOT NULL, payload TEXT NOT NULL,
  status TEXT NOT NULL DEFAULT 'pending', lease TEXT, attempts INTEGER NOT NULL DEFAULT 0,
  next_at INTEGER NOT NULL);
CREATE INDEX job_due ON job (next_at) WHERE status = 'pending';
CREATE TABLE attempt (id INTEGER PRIMARY KEY, job_id INTEGER NOT NULL, n INTEGER NOT NULL,
  status_code INTEGER, error TEXT, at INTEGER NOT NULL);
CREATE INDEX attempt_job ON attempt (job_id);`;

answerLoopCalls(() => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "carehooks-bench-loop-"));
  process.on("exit", () => rmSync(dir, { recursive: true, force: true }));
  const db = new Database(path.join(dir, "loop.db"));
  db.pragma("journal_mode = WAL");
  db.pragma("synchronous = NORMAL");
  db.exec(SCHEMA);
  const insert = db.prepare("INSERT INTO job (event_id, payload, next_at) VALUES (?, ?, ?)");
  const claim = db.prepare(`UPDATE job SET status = 'in_flight', lease = @lease, attempts = attempts + 1
    WHERE id IN (SELECT id FROM job WHERE status = 'pending' AND next_at <= @now ORDER BY next_at LIMIT @n)
    RETURNING id, event_id, payload, attempts`);
  const done = db.prepare(`UPDATE job SET status = @status, lease = NULL, next_at = @next
    WHERE id = @id AND lease = @lease`);
  const attempt = db.prepare(
    "INSERT INTO attempt (job_id, n, status_code, error, at) VALUES (@id, @n, @code, @error, @at)",
  );
  return {
    insert: db.transaction((jobs) => {
      for (const job of jobs) insert.run(job.eventId, JSON.stringify(job.payload), Date.now());
    }),
    claim: (lease, n) => claim.all({ lease, now: Date.now(), n }),
    complete: db.transaction((outcomes) => {
      for (const o of outcomes) {
        const next = o.ok ? 0 : Date.now() + 1000;
        done.run({ id: o.id, lease: o.lease, status: o.ok ? "succeeded" : "pending", next });
        attempt.run({ id: o.id, n: o.n, code: o.code, error: o.error, at: o.at });
      }
    }),
    counts: () =>
      Object.fromEntries(
        db
          .prepare("SELECT status, count(*) AS n FROM job GROUP BY status")
          .all()
          .map((c) => [c.status, c.n]),
      ),
    close() {
      db.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}, betterSqliteVersion);
