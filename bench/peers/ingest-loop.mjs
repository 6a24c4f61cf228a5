// Reference ingest: the smallest API that takes an appointment durably, the floor under carehooks'
// API-only create rate on SQLite. One `node:http` server in one thread answers the two calls the
// bench's client makes (login, create an appointment): it checks the bearer token, parses and checks
// the body, and writes what carehooks writes for a create with one webhook (the appointment, its
// event with a payload shaped like carehooks', one pending delivery; time-ordered ids) into a SQLite
// file of its own. The creates of one turn of the event loop share one transaction, each in a
// savepoint of its own; the COMMIT does not wait for the disk (synchronous=NORMAL), and the turn's
// creates are answered once an fsync of the log on the thread pool has returned: durable before the
// answer, as carehooks' default, without holding the event loop. None of carehooks' API is here:
// schema validation of every field, scopes, idempotency keys, rate limits, audit, the outbox's
// subscription lookup and filters, metrics, logs.
//
// Reference end to end: after `deliver`, the reference loop (loop.mjs) runs on the same thread over
// the same file: the bare design's end-to-end rate on SQLite, for carehooks' to be compared with (it
// is no strict floor: carehooks has matched it). It claims with one UPDATE …
// RETURNING, writes each flush's outcomes (the delivery's status and an attempt row) in one
// transaction, and is woken once a turn's creates are on disk. As carehooks' dispatcher, it claims
// only deliveries whose create is on disk (rowid up to the last fsync's turn), and its statements
// never join a turn's open transaction: they wait for its COMMIT.
//
// Driven over IPC (lib/ipc.mjs): start → { port }, deliver({ url, key, concurrency }), finish → its
// counters and counts (the loop stopped first), close; the file is removed at close.
import { randomBytes, timingSafeEqual } from "node:crypto";
import { closeSync, fsync, mkdtempSync, openSync, rmSync } from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { betterSqliteVersion, BetterSqlite3 as Database } from "../lib/deps.mjs";
import { answerCalls } from "../lib/ipc.mjs";
import { appointmentEvent } from "../lib/payload.mjs";
import { webhookPoster } from "./common.mjs";
import { startLoop } from "./loop.mjs";

const MAX_BODY_BYTES = 64 * 1024;
const FIELDS = ["doctor_id", "patient_id", "clinic_id", "partner_appointment_id", "start_time", "end_time"];

const SCHEMA = `
CREATE TABLE appointment (id TEXT PRIMARY KEY, doctor_id TEXT NOT NULL, patient_id TEXT NOT NULL,
  clinic_id TEXT NOT NULL, partner_appointment_id TEXT NOT NULL, start_time TEXT NOT NULL,
  end_time TEXT NOT NULL, created_at INTEGER NOT NULL);
CREATE TABLE event (id TEXT PRIMARY KEY, name TEXT NOT NULL, resource_id TEXT NOT NULL,
  payload TEXT NOT NULL, created_at INTEGER NOT NULL);
CREATE TABLE delivery (id TEXT PRIMARY KEY, event_id TEXT NOT NULL, subscription_id TEXT NOT NULL,
  status TEXT NOT NULL, next_attempt_at INTEGER NOT NULL, lease TEXT, attempts INTEGER NOT NULL DEFAULT 0);
CREATE INDEX delivery_due ON delivery (subscription_id, next_attempt_at) WHERE status = 'pending';
CREATE TABLE attempt (id INTEGER PRIMARY KEY, delivery_id TEXT NOT NULL, n INTEGER NOT NULL,
  status_code INTEGER, error TEXT, at INTEGER NOT NULL);
CREATE INDEX attempt_delivery ON attempt (delivery_id);`;

let dir;
let db;
let server;
let walFd;
/** The reference end to end's loop and its connections, once `deliver` has started them. */
let delivering;
/** The delivery loop's claim and complete over the ingest's file (set by open). */
let queue;
/** What the reference end to end did, for `finish`: statements deferred past a COMMIT, wake-ups, and claimed rows not yet on disk (must stay 0). */
const counters = { deferred: 0, wakes: 0, claimedUnsynced: 0 };
/** Turns open or waiting for their fsync, and what waits for there to be none (close). */
let turnsInProgress = 0;
const whenNoTurns = [];
const turnEnded = () => {
  turnsInProgress -= 1;
  if (turnsInProgress > 0) return;
  for (const resolve of whenNoTurns.splice(0)) resolve();
};

/** Time-ordered ids, as carehooks' (a random UUID would scatter the primary keys over the B-trees). */
let seq = 0;
const nextId = (prefix) => `${prefix}_${Date.now().toString(36)}${(seq++).toString(36).padStart(6, "0")}`;

function open() {
  dir = mkdtempSync(path.join(os.tmpdir(), "carehooks-bench-ingest-"));
  process.on("exit", () => rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, "ingest.db");
  db = new Database(file);
  db.pragma("journal_mode = WAL");
  db.pragma("synchronous = NORMAL");
  db.exec(SCHEMA);
  walFd = openSync(`${file}-wal`, "r");
  const appointment = db.prepare(
    "INSERT INTO appointment VALUES (@id, @doctor_id, @patient_id, @clinic_id, @partner_appointment_id, @start_time, @end_time, @at)",
  );
  const event = db.prepare("INSERT INTO event VALUES (?, 'appointment.created', ?, ?, ?)");
  const delivery = db.prepare(
    "INSERT INTO delivery (id, event_id, subscription_id, status, next_attempt_at) VALUES (?, ?, 'sub_bench', 'pending', ?)",
  );
  const savepoint = db.prepare("SAVEPOINT one");
  const release = db.prepare("RELEASE one");
  const rollbackOne = db.prepare("ROLLBACK TO one");
  const identity = { businessId: "biz_bench", clientId: "cli_bench" };
  let waiting;
  /** The highest delivery rowid of the open turn, and of the turns whose fsync has returned. */
  let turnRowid = 0;
  let syncedRowid = 0;
  /** A failed fsync: nothing written since is known to be on disk, so every later create fails and nothing more is claimed. */
  let flushFailure;
  /** The delivery loop's statements that came while a turn's transaction was open: run after its COMMIT. */
  let afterCommit = [];
  /** The turn's transaction: COMMIT, then an fsync of the log off the event loop, then every answer. */
  const commit = () => {
    const answers = waiting;
    const upTo = turnRowid;
    waiting = undefined;
    try {
      db.exec("COMMIT");
    } catch (error) {
      if (db.inTransaction) db.exec("ROLLBACK");
      for (const done of answers) done(error);
      turnEnded();
      return;
    } finally {
      const deferred = afterCommit;
      afterCommit = [];
      counters.deferred += deferred.length;
      for (const run of deferred) run();
    }
    fsync(walFd, (error) => {
      flushFailure ??= error ?? undefined;
      if (!flushFailure) syncedRowid = Math.max(syncedRowid, upTo);
      for (const done of answers) done(flushFailure);
      turnEnded();
      if (delivering && !flushFailure) {
        counters.wakes += 1;
        delivering.loop.wake();
      }
    });
  };
  /** Runs `statement` outside any turn's transaction: now, or right after the open one commits. */
  const outsideTurn =
    (statement) =>
    (...args) =>
      new Promise((resolve, reject) => {
        const run = () => {
          try {
            resolve(statement(...args));
          } catch (error) {
            reject(error);
          }
        };
        if (waiting === undefined) run();
        else afterCommit.push(run);
      });
  queue = deliveryQueue(outsideTurn, () => syncedRowid);
  /** Writes one create into the turn's transaction; `done(error, id)` once it is on disk. */
  return (fields, done) => {
    if (flushFailure) {
      done(flushFailure);
      return;
    }
    try {
      if (waiting === undefined) {
        db.exec("BEGIN IMMEDIATE");
        waiting = [];
        turnsInProgress += 1;
        setImmediate(commit);
      }
    } catch (error) {
      done(error);
      return;
    }
    const at = Date.now();
    const id = nextId("apt");
    const eventId = nextId("evt");
    savepoint.run();
    try {
      appointment.run({ ...fields, id, at });
      const { event: payload } = appointmentEvent({
        ...identity,
        doctorId: fields.doctor_id,
        patientId: fields.patient_id,
        clinicId: fields.clinic_id,
        partnerId: fields.partner_appointment_id,
        eventId,
        appointmentId: id,
      });
      event.run(eventId, id, JSON.stringify(payload), at);
      turnRowid = Number(delivery.run(nextId("dlv"), eventId, at).lastInsertRowid);
      release.run();
    } catch (error) {
      rollbackOne.run();
      release.run();
      done(error);
      return;
    }
    waiting.push((error) => done(error, id));
  };
}

/** The reference loop's store (loop.mjs) over the ingest's tables; `outsideTurn` keeps it out of the turns' transactions. */
function deliveryQueue(outsideTurn, synced) {
  const claim = db.prepare(`UPDATE delivery SET status = 'in_flight', lease = @lease, attempts = attempts + 1
    WHERE id IN (SELECT id FROM delivery WHERE subscription_id = 'sub_bench' AND status = 'pending'
      AND next_attempt_at <= @now AND rowid <= @synced ORDER BY next_attempt_at LIMIT @n)
    RETURNING rowid, id, event_id, attempts`);
  const payload = db.prepare("SELECT payload FROM event WHERE id = ?").pluck();
  const done = db.prepare(`UPDATE delivery SET status = @status, lease = NULL, next_attempt_at = @next
    WHERE id = @id AND lease = @lease`);
  const attempt = db.prepare(
    "INSERT INTO attempt (delivery_id, n, status_code, error, at) VALUES (@id, @n, @code, @error, @at)",
  );
  return {
    claim: outsideTurn(
      db.transaction((lease, n) => {
        const upTo = synced();
        const rows = claim.all({ lease, now: Date.now(), synced: upTo, n });
        for (const row of rows) {
          if (row.rowid > upTo) counters.claimedUnsynced += 1;
          row.payload = payload.get(row.event_id);
        }
        return rows;
      }),
    ),
    complete: outsideTurn(
      db.transaction((outcomes) => {
        for (const o of outcomes) {
          const next = o.ok ? 0 : Date.now() + 1000;
          done.run({ id: o.id, lease: o.lease, status: o.ok ? "succeeded" : "pending", next });
          attempt.run({ id: o.id, n: o.n, code: o.code, error: o.error, at: o.at });
        }
      }),
    ),
  };
}

function answer(res, status, body) {
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
  res.end(text);
}

function startServer(token) {
  const expected = Buffer.from(`Bearer ${token}`);
  const create = open();
  server = http.createServer((req, res) => {
    const chunks = [];
    let size = 0;
    req.on("data", (chunk) => {
      size += chunk.length;
      if (size <= MAX_BODY_BYTES) chunks.push(chunk);
    });
    req.on("end", () => {
      if (size > MAX_BODY_BYTES) return answer(res, 413, { error: "body too large" });
      if (req.method === "POST" && req.url === "/connect-auth/v1/account/login") {
        return answer(res, 200, { access_token: token });
      }
      if (req.method !== "POST" || req.url !== "/dr/v1/business/appointments") {
        return answer(res, 404, { error: "not found" });
      }
      const given = Buffer.from(req.headers.authorization ?? "");
      if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
        return answer(res, 401, { error: "unauthorised" });
      }
      let body;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString("utf8"));
      } catch {
        return answer(res, 400, { error: "invalid JSON" });
      }
      const fields = {};
      for (const name of FIELDS) {
        const value = body?.[name];
        if (typeof value !== "string" || value.length === 0 || value.length > 200) {
          return answer(res, 400, { error: `${name} must be a string` });
        }
        fields[name] = value;
      }
      create(fields, (error, id) =>
        error ? answer(res, 500, { error: String(error.message) }) : answer(res, 201, { appointment_id: id }),
      );
    });
  });
  server.keepAliveTimeout = 65_000;
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(server.address().port)));
}

answerCalls(
  {
    async start() {
      return { port: await startServer(randomBytes(24).toString("base64url")) };
    },
    async deliver({ url, key, concurrency }) {
      if (!queue) throw new Error("deliver before start");
      if (delivering) throw new Error("already delivering");
      const poster = webhookPoster({ url, key, connections: concurrency, version: "bench-reference-e2e" });
      delivering = { poster, loop: startLoop({ concurrency, poster, claim: queue.claim, complete: queue.complete }) };
      return true;
    },
    /** Stops the delivery loop (its last outcomes written), then its counters, deliveries by status and attempt rows. */
    async finish() {
      await delivering?.loop.stop();
      const count = (sql) => db.prepare(sql).all();
      return {
        ...counters,
        deliveries: Object.fromEntries(
          count("SELECT status, count(*) AS n FROM delivery GROUP BY status").map((c) => [c.status, c.n]),
        ),
        attempts: count("SELECT count(*) AS n FROM attempt")[0].n,
      };
    },
    /** Stops taking creates, lets the open turn commit and sync, stops the loop, then removes the file; safe to call twice. */
    async close() {
      const open = server;
      server = undefined;
      if (open) {
        open.closeAllConnections?.();
        await new Promise((resolve) => open.close(resolve));
      }
      if (turnsInProgress > 0) await new Promise((resolve) => whenNoTurns.push(resolve));
      await delivering?.loop.stop();
      await delivering?.poster.close();
      delivering = undefined;
      if (walFd !== undefined) closeSync(walFd);
      walFd = undefined;
      db?.close();
      db = undefined;
      if (dir) rmSync(dir, { recursive: true, force: true });
    },
  },
  { version: betterSqliteVersion },
);
