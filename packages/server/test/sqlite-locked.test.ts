import { type ChildProcess, spawn } from "node:child_process";
import { createRequire } from "node:module";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { accessToken, createClient, type Server, startServer } from "./support/binary.js";
import { tempDir } from "./support/databases.js";
import { booking } from "./support/fixtures.js";
import { type Harness, startHarness, type Tenant } from "./support/harness.js";
import { type Receiver, startReceiver } from "./support/receiver.js";

const APPOINTMENTS = "/dr/v1/business/appointments";
const BETTER_SQLITE3 = createRequire(import.meta.url).resolve("better-sqlite3");

/** Another program holding the write lock, as `sqlite3 carehooks.db 'BEGIN EXCLUSIVE'` would. */
async function holdLock(file: string): Promise<ChildProcess> {
  const script = `
    const Database = require(${JSON.stringify(BETTER_SQLITE3)});
    const db = new Database(${JSON.stringify(file)});
    db.exec("BEGIN EXCLUSIVE");
    process.stdout.write("locked\\n");
    setInterval(() => {}, 1000);
  `;
  const child = spawn(process.execPath, ["-e", script], { stdio: ["ignore", "pipe", "inherit"] });
  await new Promise<void>((resolve, reject) => {
    child.stdout?.once("data", () => resolve());
    child.once("exit", (code) => reject(new Error(`the lock holder exited with ${code}`)));
  });
  return child;
}

async function timed<T>(work: Promise<T>): Promise<{ value: T; ms: number }> {
  const started = performance.now();
  const value = await work;
  return { value, ms: performance.now() - started };
}

// SQLite only: PostgreSQL has no database-wide lock another program can take this way.
describe("SQLite held by another process", () => {
  let h: Harness;
  let clinic: Tenant;
  let base: string;

  beforeAll(async () => {
    h = await startHarness("sqlite");
    clinic = await h.tenant();
    base = await h.app.listen({ host: "127.0.0.1", port: 0 });
  });
  afterAll(async () => h?.close());

  const create = () =>
    fetch(`${base}${APPOINTMENTS}`, {
      method: "POST",
      headers: { authorization: `Bearer ${clinic.accessToken}`, "content-type": "application/json" },
      body: JSON.stringify(booking),
    });

  it("answers health at once, readiness 503, and writes 503 with Retry-After fast, then recovers", async () => {
    const before = (await clinic.request("GET", APPOINTMENTS)).json().data.length;
    const holder = await holdLock(path.join(h.database.dataDir, "carehooks.db"));
    try {
      // Writes arriving together: none may wait out a busy timeout behind the others.
      const { value: answers, ms } = await timed(Promise.all(Array.from({ length: 8 }, create)));
      expect(ms).toBeLessThan(2000);
      for (const answer of answers) {
        expect(answer.status).toBe(503);
        expect(answer.headers.get("retry-after")).toBeTruthy();
        expect(((await answer.json()) as { error: { code: string } }).error.code).toBe("SERVICE_UNAVAILABLE");
      }
      const [health, ready] = await Promise.all([
        timed(fetch(`${base}/healthz`)),
        timed(fetch(`${base}/readyz`)),
        create(),
      ]);
      expect(health.value.status).toBe(200);
      expect(health.ms).toBeLessThan(500);
      expect(ready.value.status).toBe(503);
      expect(((await ready.value.json()) as { error: { message: string } }).error.message).toMatch(/writes/);
      // Reads that leave no trace go on (the write lock does not stop them); audited reads write, so they wait.
      expect((await clinic.request("GET", "/notification/v1/connect/webhook/subscriptions")).statusCode).toBe(200);
    } finally {
      holder.kill("SIGKILL");
      await new Promise((resolve) => holder.once("exit", resolve));
    }
    // The refused writes were not committed later; once the lock is gone (and the hold lapses) writes go through.
    await new Promise((resolve) => setTimeout(resolve, 1100));
    expect((await fetch(`${base}/readyz`)).status).toBe(200);
    expect((await create()).status).toBe(201);
    expect((await clinic.request("GET", APPOINTMENTS)).json().data.length).toBe(before + 1);
  });
});

// The whole server: its dispatcher thread writes too, and a thread waiting for the lock holds the process's write turn.
describe("carehooks serve on SQLite held by another process", () => {
  let server: Server;
  let receiver: Receiver;
  let dataDir: string;
  let token: string;

  beforeAll(async () => {
    dataDir = tempDir();
    const env = {
      CAREHOOKS_DATA_DIR: dataDir,
      CAREHOOKS_ALLOW_HTTP: "true",
      CAREHOOKS_ALLOWED_TARGETS: "127.0.0.0/8",
      CAREHOOKS_RETRY_SCHEDULE: "100ms,100ms,100ms,100ms,100ms,100ms,100ms,100ms",
      CAREHOOKS_POLL_INTERVAL: "100ms",
    };
    const client = await createClient(env, "Locked Clinic");
    server = await startServer(env);
    receiver = await startReceiver();
    // A receiver that keeps failing keeps the dispatcher claiming and recording attempts.
    receiver.answer = () => ({ status: 500 });
    token = await accessToken(server.url, client);
  });
  afterAll(async () => {
    await server?.stop("SIGKILL");
    await receiver?.close();
  });

  const post = (url: string, body: unknown) =>
    fetch(`${server.url}${url}`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: JSON.stringify(body),
    });

  it("answers writes 503 within the busy timeout, not after the dispatcher's wait, and health at once", async () => {
    const webhook = await post("/notification/v1/connect/webhook/subscriptions", {
      endpoint: receiver.url,
      event_names: ["appointment.created"],
    });
    expect(webhook.status).toBe(201);
    for (let i = 0; i < 3; i++) expect((await post(APPOINTMENTS, booking)).status).toBe(201);
    await receiver.waitFor(3);

    const holder = await holdLock(path.join(dataDir, "carehooks.db"));
    try {
      // Let the dispatcher meet the lock first.
      await new Promise((resolve) => setTimeout(resolve, 300));
      const { value: answers, ms } = await timed(
        Promise.all(Array.from({ length: 6 }, () => post(APPOINTMENTS, booking))),
      );
      expect(answers.map((answer) => answer.status)).toEqual(Array(6).fill(503));
      expect(ms).toBeLessThan(1500);
      const health = await timed(fetch(`${server.url}/healthz`));
      expect(health.value.status).toBe(200);
      expect(health.ms).toBeLessThan(500);
      expect((await fetch(`${server.url}/readyz`)).status).toBe(503);
    } finally {
      holder.kill("SIGKILL");
      await new Promise((resolve) => holder.once("exit", resolve));
    }
    await new Promise((resolve) => setTimeout(resolve, 1100));
    expect((await post(APPOINTMENTS, booking)).status).toBe(201);
    expect((await fetch(`${server.url}/readyz`)).status).toBe(200);
  });
});
