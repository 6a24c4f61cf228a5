/**
 * The embedded server's dispatcher on its own thread (the default with SQLite),
 * and on the API's event loop (`CAREHOOKS_DISPATCHER_THREAD=false`), run as an
 * operator runs it: deliveries, the dispatcher's metrics and log lines through
 * the one process, and a shutdown that exits 0 holding no lease.
 */
import path from "node:path";
import BetterSqlite3 from "better-sqlite3";
import { afterEach, describe, expect, it } from "vitest";
import { plain } from "../src/delivery/log-fields.js";
import { run, type Server, startServer } from "./support/binary.js";
import { tempDir } from "./support/databases.js";
import { booking, until } from "./support/fixtures.js";
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

/** A started embedded server with a logged-in client, and a way to add webhooks and book appointments. */
async function embedded(thread: string, more: Record<string, string> = {}) {
  const dataDir = tempDir();
  const env = {
    ...LOCAL_DELIVERY_ENV,
    CAREHOOKS_DATA_DIR: dataDir,
    CAREHOOKS_SQLITE_SYNCHRONOUS: "FULL",
    CAREHOOKS_DISPATCHER_THREAD: thread,
    CAREHOOKS_LOG_LEVEL: "warn",
    ...more,
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
  return {
    server,
    async subscribe(endpoint: string): Promise<string> {
      const response = await fetch(`${server.url}${WEBHOOKS}`, {
        method: "POST",
        headers,
        body: JSON.stringify({ endpoint, event_names: ["appointment.created"] }),
      });
      expect(response.status).toBe(201);
      return ((await response.json()) as { id: string }).id;
    },
    /** Books `count` appointments, 20 at a time. */
    async book(count: number): Promise<void> {
      const body = JSON.stringify(booking);
      for (let i = 0; i < count; i += 20) {
        const answers = await Promise.all(
          Array.from({ length: Math.min(20, count - i) }, () =>
            fetch(`${server.url}/dr/v1/business/appointments`, { method: "POST", headers, body }),
          ),
        );
        for (const answer of answers) expect(answer.status).toBe(201);
      }
    },
    /** The database, read after the server has stopped. */
    read<T>(query: (db: BetterSqlite3.Database) => T): T {
      const db = new BetterSqlite3(path.join(dataDir, "carehooks.db"), { readonly: true });
      try {
        return query(db);
      } finally {
        db.close();
      }
    },
  };
}

describe.each([
  ["on a thread of its own", "true"],
  ["on the API's event loop", "false"],
])("the embedded dispatcher %s", (_label, thread) => {
  it("delivers every event, reports and logs through the process, and exits 0 holding no lease", async () => {
    const { server, subscribe, book, read } = await embedded(thread);
    const healthy = await receiver();
    const goneReceiver = await receiver();
    goneReceiver.answer = () => ({ status: 410 });
    const healthyId = await subscribe(healthy.url);
    const goneId = await subscribe(goneReceiver.url);

    await book(EVENTS);
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

    // A receiver counts a request when it arrives; the dispatcher counts its attempt once the answer is read.
    const succeeded = `carehooks_delivery_attempts_total{outcome="succeeded"} ${EVENTS}\n`;
    const goneCount = (text: string) =>
      Number(text.match(/^carehooks_delivery_attempts_total\{outcome="gone"\} (\d+)$/m)?.[1]);
    const metrics = await until(
      async () => {
        const text = await (await fetch(`${server.url}/metrics`)).text();
        return text.includes(succeeded) && goneCount(text) === goneReceiver.received.length && text;
      },
      10_000,
      "every attempt the receivers answered counted in /metrics",
    );
    // Requests already on their way to it when the first 410 came back were answered 410 too.
    const gone = goneCount(metrics);
    expect(gone).toBeGreaterThanOrEqual(1);
    expect(gone).toBe(goneReceiver.received.length);
    expect(metrics.match(/^# TYPE carehooks_delivery_attempts_total counter$/gm)).toHaveLength(1);
    expect(metrics).toContain(`carehooks_events_total{name="appointment.created"} ${EVENTS}\n`);
    expect(metrics).toMatch(/^carehooks_sqlite_wal\{kind="commits"\} \d+$/m);
    // The log is copied back in the background, not by the serving connections.
    expect(metrics).toMatch(/^carehooks_sqlite_wal\{kind="checkpoints"\} [1-9]\d*$/m);
    expect(metrics).toMatch(/^carehooks_sqlite_wal\{kind="log_frames"\} \d+$/m);

    expect(await server.stop("SIGTERM"), server.output()).toBe(0);
    read((db) => {
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
    });
  });

  it("stops on SIGTERM with attempts in flight: they finish and are recorded, the rest goes back to pending", async () => {
    const { server, subscribe, book, read } = await embedded(thread, { CAREHOOKS_SHUTDOWN_GRACE: "3s" });
    const slow = await receiver();
    slow.answer = () => ({ status: 200, delayMs: 600 });
    await subscribe(slow.url);
    await book(30);
    await slow.waitFor(1);
    const stopped = Date.now();
    expect(await server.stop("SIGTERM"), server.output()).toBe(0);
    // Within the grace period, not cut off at its end.
    expect(Date.now() - stopped).toBeLessThan(3000);
    read((db) => {
      const rows = db.prepare("SELECT status, count(*) AS n FROM delivery GROUP BY status").all() as {
        status: string;
        n: number;
      }[];
      const count = (status: string) => rows.find((row) => row.status === status)?.n ?? 0;
      expect(count("in_flight")).toBe(0);
      // Every request the receiver got was answered, and its attempt recorded as a success.
      expect(count("succeeded")).toBe(slow.received.length);
      expect(count("succeeded") + count("pending")).toBe(30);
      expect(db.prepare("SELECT count(*) AS n FROM attempt").get()).toEqual({ n: slow.received.length });
    });
  });
});

describe("log fields posted from the dispatcher thread", () => {
  it("keeps an error's own fields and cause, drops functions, and marks only real cycles", () => {
    const shared = { id: "wh_1" };
    const cycle: Record<string, unknown> = { name: "loop" };
    cycle.self = cycle;
    const error = Object.assign(new Error("connect failed", { cause: new Error("ECONNREFUSED") }), { code: "E1" });
    const fields = plain({ first: shared, second: shared, cycle, error, callback: () => 1 }) as Record<string, any>;
    expect(fields.first).toEqual({ id: "wh_1" });
    expect(fields.second).toEqual({ id: "wh_1" });
    expect(fields.cycle).toEqual({ name: "loop", self: "[circular]" });
    expect(fields.error).toMatchObject({ type: "Error", message: "connect failed", code: "E1" });
    expect(fields.error.cause).toMatchObject({ type: "Error", message: "ECONNREFUSED" });
    expect(fields.callback).toBeUndefined();
    expect(structuredClone(fields)).toEqual(fields);
  });
});
