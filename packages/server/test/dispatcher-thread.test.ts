/**
 * The embedded server's dispatcher on its own thread (the default with SQLite),
 * and on the API's event loop (`CAREHOOKS_DISPATCHER_THREAD=false`), run as an
 * operator runs it: deliveries, the dispatcher's metrics and log lines through
 * the one process, and a shutdown that exits 0 holding no lease.
 */
import path from "node:path";
import BetterSqlite3 from "better-sqlite3";
import { afterEach, describe, expect, it } from "vitest";
import { run, type Server, startServer } from "./support/binary.js";
import { tempDir } from "./support/databases.js";
import { until } from "./support/fixtures.js";
import { LOCAL_DELIVERY_ENV } from "./support/harness.js";
import { type Receiver, startReceiver } from "./support/receiver.js";

const EVENTS = 200;
const WEBHOOKS = "/notification/v1/connect/webhook/subscriptions";

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => {});
});

async function receiver(): Promise<Receiver> {
  const started = await startReceiver();
  cleanups.push(() => started.close());
  return started;
}

describe.each([
  ["on a thread of its own", "true"],
  ["on the API's event loop", "false"],
])("the embedded dispatcher %s", (_label, thread) => {
  it("delivers every event, reports and logs through the process, and exits 0 holding no lease", async () => {
    const dataDir = tempDir();
    const env = {
      ...LOCAL_DELIVERY_ENV,
      CAREHOOKS_DATA_DIR: dataDir,
      CAREHOOKS_SQLITE_SYNCHRONOUS: "FULL",
      CAREHOOKS_DISPATCHER_THREAD: thread,
      CAREHOOKS_LOG_LEVEL: "warn",
    };
    const created = await run(["clients", "create", "--business", "Thread Clinic", "--scopes", "all", "--json"], env);
    expect(created.code, created.stderr).toBe(0);
    const client = JSON.parse(created.stdout) as { client_id: string; client_secret: string };
    const server: Server = await startServer(env);
    cleanups.push(() => server.stop("SIGKILL"));
    const login = await fetch(`${server.url}/connect-auth/v1/account/login`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ client_id: client.client_id, client_secret: client.client_secret }),
    });
    const { access_token } = (await login.json()) as { access_token: string };
    const headers = { authorization: `Bearer ${access_token}`, "content-type": "application/json" };
    const subscribe = async (endpoint: string) => {
      const response = await fetch(`${server.url}${WEBHOOKS}`, {
        method: "POST",
        headers,
        body: JSON.stringify({ endpoint, event_names: ["appointment.created"] }),
      });
      expect(response.status).toBe(201);
      return ((await response.json()) as { id: string }).id;
    };
    const healthy = await receiver();
    const goneReceiver = await receiver();
    goneReceiver.answer = () => ({ status: 410 });
    const healthyId = await subscribe(healthy.url);
    const goneId = await subscribe(goneReceiver.url);

    const body = JSON.stringify({
      doctor_id: "d",
      patient_id: "p",
      clinic_id: "c",
      start_time: 1_800_000_000,
      end_time: 1_800_000_900,
    });
    for (let i = 0; i < EVENTS; i += 20) {
      const answers = await Promise.all(
        Array.from({ length: 20 }, () =>
          fetch(`${server.url}/dr/v1/business/appointments`, { method: "POST", headers, body }),
        ),
      );
      for (const answer of answers) expect(answer.status).toBe(201);
    }
    await healthy.waitFor(EVENTS, 30_000);
    // The dispatcher's warning for the webhook that answered 410 is written by the process's logger.
    await until(() => server.output().includes("subscription disabled"), 10_000, "the dispatcher's log line");
    const line = server
      .output()
      .split("\n")
      .find((text) => text.includes("subscription disabled"));
    const logged = JSON.parse(line as string);
    expect(logged).toMatchObject({ level: 40, subscription: goneId });
    // Said by the dispatcher thread, through the main thread's logger, or by the main thread itself.
    expect(logged.thread).toBe(thread === "true" ? "dispatcher" : undefined);

    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    expect(metrics).toContain(`carehooks_delivery_attempts_total{outcome="succeeded"} ${EVENTS}\n`);
    // Requests already on their way to it when the first 410 came back were answered 410 too.
    const gone = Number(metrics.match(/^carehooks_delivery_attempts_total\{outcome="gone"\} (\d+)$/m)?.[1]);
    expect(gone).toBeGreaterThanOrEqual(1);
    expect(gone).toBe(goneReceiver.received.length);
    expect(metrics.match(/^# TYPE carehooks_delivery_attempts_total counter$/gm)).toHaveLength(1);
    expect(metrics).toContain(`carehooks_events_total{name="appointment.created"} ${EVENTS}\n`);
    expect(metrics).toMatch(/^carehooks_sqlite_wal\{kind="commits"\} \d+$/m);

    expect(await server.stop("SIGTERM")).toBe(0);
    const db = new BetterSqlite3(path.join(dataDir, "carehooks.db"), { readonly: true });
    try {
      const statuses = (subscription: string) =>
        db
          .prepare("SELECT status, count(*) AS n FROM delivery WHERE subscription_id = ? GROUP BY status")
          .all(subscription);
      expect(statuses(healthyId)).toEqual([{ status: "succeeded", n: EVENTS }]);
      // The 410 disabled its webhook; whatever was queued for it behind that was cancelled, nothing is left leased.
      for (const { status } of statuses(goneId) as { status: string }[])
        expect(["failed", "cancelled"]).toContain(status);
      expect(db.prepare("SELECT state FROM subscription WHERE id = ?").get(goneId)).toEqual({ state: "disabled" });
      expect(db.prepare("SELECT count(*) AS n FROM delivery WHERE status = 'in_flight'").get()).toEqual({ n: 0 });
    } finally {
      db.close();
    }
  });
});
