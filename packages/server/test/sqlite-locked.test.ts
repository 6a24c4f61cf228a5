import { type ChildProcess, spawn } from "node:child_process";
import { createRequire } from "node:module";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { booking } from "./support/fixtures.js";
import { type Harness, startHarness, type Tenant } from "./support/harness.js";

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
