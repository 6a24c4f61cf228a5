// Reference ingest: the smallest API that takes an appointment durably, the floor under carehooks'
// API-only create rate on SQLite. One `node:http` server in one thread answers the two calls the
// bench's client makes (login, create an appointment): it checks the bearer token, parses and checks
// the body, and writes what carehooks writes for a create with one webhook (the appointment, its
// event with the payload, one pending delivery) into a SQLite file of its own (WAL,
// synchronous=FULL, carehooks' default). The creates of one turn of the event loop share one
// transaction and one COMMIT, and none is answered before it. None of carehooks' API is here:
// schema validation of every field, scopes, idempotency keys, rate limits, audit, the outbox's
// subscription lookup and filters, metrics, logs. Driven over IPC (lib/ipc.mjs): start → { port },
// close; the file is removed at close.
import { randomBytes, randomUUID, timingSafeEqual } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { betterSqliteVersion, BetterSqlite3 as Database } from "../lib/deps.mjs";
import { answerCalls } from "../lib/ipc.mjs";

const MAX_BODY_BYTES = 64 * 1024;
const FIELDS = ["doctor_id", "patient_id", "clinic_id", "partner_appointment_id", "start_time", "end_time"];

const SCHEMA = `
CREATE TABLE appointment (id TEXT PRIMARY KEY, doctor_id TEXT NOT NULL, patient_id TEXT NOT NULL,
  clinic_id TEXT NOT NULL, partner_appointment_id TEXT NOT NULL, start_time TEXT NOT NULL,
  end_time TEXT NOT NULL, created_at INTEGER NOT NULL);
CREATE TABLE event (id TEXT PRIMARY KEY, name TEXT NOT NULL, resource_id TEXT NOT NULL,
  payload TEXT NOT NULL, created_at INTEGER NOT NULL);
CREATE TABLE delivery (id TEXT PRIMARY KEY, event_id TEXT NOT NULL, subscription_id TEXT NOT NULL,
  status TEXT NOT NULL, next_attempt_at INTEGER NOT NULL);
CREATE INDEX delivery_due ON delivery (subscription_id, next_attempt_at) WHERE status = 'pending';`;

let dir;
let db;
let server;

function open() {
  dir = mkdtempSync(path.join(os.tmpdir(), "carehooks-bench-ingest-"));
  db = new Database(path.join(dir, "ingest.db"));
  db.pragma("journal_mode = WAL");
  db.pragma("synchronous = FULL");
  db.exec(SCHEMA);
  const appointment = db.prepare(
    "INSERT INTO appointment VALUES (@id, @doctor_id, @patient_id, @clinic_id, @partner_appointment_id, @start_time, @end_time, @at)",
  );
  const event = db.prepare("INSERT INTO event VALUES (?, 'appointment.created', ?, ?, ?)");
  const delivery = db.prepare("INSERT INTO delivery VALUES (?, ?, 'sub_bench', 'pending', ?)");
  /** Writes one create into the turn's transaction; `done` is answered after its COMMIT. */
  let waiting;
  const commit = () => {
    const answers = waiting;
    waiting = undefined;
    let error;
    try {
      db.exec("COMMIT");
    } catch (e) {
      error = e;
      if (db.inTransaction) db.exec("ROLLBACK");
    }
    for (const done of answers) done(error);
  };
  return (fields, done) => {
    if (waiting === undefined) {
      db.exec("BEGIN IMMEDIATE");
      waiting = [];
      setImmediate(commit);
    }
    const at = Date.now();
    const id = `apt_${randomUUID()}`;
    const eventId = `evt_${randomUUID()}`;
    appointment.run({ ...fields, id, at });
    const payload = JSON.stringify({
      service: "appointment",
      event: "appointment.created",
      event_id: eventId,
      event_time: Math.floor(at / 1000),
      data: { appointment_id: id, clinic_id: fields.clinic_id, doctor_id: fields.doctor_id },
    });
    event.run(eventId, id, payload, at);
    delivery.run(`dlv_${randomUUID()}`, eventId, at);
    waiting.push((error) => done(error, id));
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
        error ? answer(res, 503, { error: String(error.message) }) : answer(res, 201, { appointment_id: id }),
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
    async close() {
      server?.closeAllConnections?.();
      await new Promise((resolve) => (server ? server.close(resolve) : resolve()));
      db?.close();
      if (dir) rmSync(dir, { recursive: true, force: true });
    },
  },
  { version: betterSqliteVersion },
);
