/**
 * Crash tests over real processes: a worker killed with SIGKILL mid-delivery
 * loses nothing, and anything delivered twice had first arrived before the
 * kill (at-least-once, never at-most-once).
 */
import fs from "node:fs";
import path from "node:path";
import BetterSqlite3 from "better-sqlite3";
import pg from "pg";
import { afterAll, describe, expect, it } from "vitest";
import { generateMasterKey } from "../src/domain/key-box.js";
import { accessToken, createClient, run, type Server, startServer } from "./support/binary.js";
import { createTestDatabase, dialects, tempDir } from "./support/databases.js";
import { booking, until } from "./support/fixtures.js";
import { type Receiver, startReceiver } from "./support/receiver.js";

const EVENTS = 2000;
const FAST = {
  CAREHOOKS_ALLOW_HTTP: "true",
  CAREHOOKS_ALLOWED_TARGETS: "127.0.0.0/8",
  CAREHOOKS_RETRY_SCHEDULE: "100ms,200ms,400ms,800ms,1s,1s,1s,1s,1s,1s",
  CAREHOOKS_CONNECT_TIMEOUT: "500ms",
  CAREHOOKS_REQUEST_TIMEOUT: "1s",
  CAREHOOKS_LEASE: "2s",
  CAREHOOKS_POLL_INTERVAL: "200ms",
  CAREHOOKS_MAX_IN_FLIGHT_PER_ENDPOINT: "16",
  CAREHOOKS_SHUTDOWN_GRACE: "3s",
};

const cleanups: (() => Promise<unknown>)[] = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {});
});

async function prepare(env: Record<string, string>, apiServer: () => Promise<Server>) {
  const client = await createClient(env, "Crash Clinic");
  const api = await apiServer();
  const token = await accessToken(api.url, client);
  const receiver = await startReceiver();
  cleanups.push(() => receiver.close());
  receiver.answer = () => ({ status: 200, delayMs: 2 });
  const headers = { authorization: `Bearer ${token}`, "content-type": "application/json" };
  const hook = await fetch(`${api.url}/notification/v1/connect/webhook/subscriptions`, {
    method: "POST",
    headers,
    body: JSON.stringify({ endpoint: receiver.url, event_names: ["appointment.created"] }),
  });
  expect(hook.status).toBe(201);
  return { api, receiver, headers };
}

/**
 * A fresh PostgreSQL schema with one `api` and two `worker` processes, a client, a receiver and
 * its webhook. With `survivorLater`, the second worker starts when `startSurvivor` is called.
 */
async function apiAndTwoWorkers(settings: Record<string, string>, survivorLater = false) {
  const db = await createTestDatabase("postgres");
  cleanups.push(() => db.drop());
  const env = {
    ...settings,
    CAREHOOKS_DATABASE_URL: db.url,
    CAREHOOKS_MASTER_KEY: generateMasterKey(),
    CAREHOOKS_JWT_SECRET: generateMasterKey(),
  };
  const servers: Server[] = [];
  cleanups.push(async () => Promise.all(servers.map((server) => server.stop("SIGKILL"))));
  const start = async (role: string) => {
    const server = await startServer({ ...env, CAREHOOKS_ROLE: role });
    servers.push(server);
    return server;
  };
  const { api, receiver, headers } = await prepare(env, () => start("api"));
  const doomed = await start("worker");
  const survivor = survivorLater ? undefined : await start("worker");
  return { db, api, receiver, headers, doomed, survivor, startSurvivor: () => start("worker") };
}

/** Books `count` appointments with bounded concurrency; returns the ids the API confirmed. */
async function book(url: string, headers: Record<string, string>, count: number): Promise<Set<string>> {
  const confirmed = new Set<string>();
  let next = 0;
  const body = JSON.stringify(booking);
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      while (next < count) {
        next += 1;
        try {
          const response = await fetch(`${url}/dr/v1/business/appointments`, { method: "POST", headers, body });
          if (response.status === 201)
            confirmed.add(((await response.json()) as { appointment_id: string }).appointment_id);
        } catch {
          // the server was killed under this request: not confirmed, so not expected
        }
      }
    }),
  );
  return confirmed;
}

function receipts(receiver: Receiver): Map<string, number[]> {
  const byAppointment = new Map<string, number[]>();
  for (const request of receiver.received) {
    const id = (JSON.parse(request.body) as { data: { appointment_id: string } }).data.appointment_id;
    byAppointment.set(id, [...(byAppointment.get(id) ?? []), request.at]);
  }
  return byAppointment;
}

/**
 * SIGKILLs the server and returns the time after which nothing it sent can still arrive: it has
 * exited (a signal is not instant on another core), and the receiver, in this process, has read
 * what it wrote before dying (already in the socket buffers: read in the poll phase, before these turns).
 */
async function killNow(server: Server): Promise<number> {
  const exited = new Promise((resolve) => server.child.once("exit", resolve));
  server.child.kill("SIGKILL");
  await exited;
  for (let turn = 0; turn < 3; turn++) await new Promise((resolve) => setImmediate(resolve));
  return Date.now();
}

function expectAtLeastOnce(confirmed: Set<string>, receiver: Receiver, killedAt: number): void {
  const got = receipts(receiver);
  const missing = [...confirmed].filter((id) => !got.has(id));
  expect(missing).toEqual([]);
  const duplicated = [...got].filter(([, times]) => times.length > 1);
  console.info(
    `${confirmed.size} confirmed events, ${receiver.received.length} requests received, ${duplicated.length} delivered twice`,
  );
  for (const [id, times] of duplicated) {
    expect(Math.min(...times), `${id} was first received after the kill, then again`).toBeLessThanOrEqual(killedAt);
  }
}

describe.runIf(dialects().includes("postgres"))("a worker killed with SIGKILL on PostgreSQL", () => {
  it(`loses none of ${EVENTS} events while the other worker takes over`, { timeout: 180_000 }, async () => {
    const { api, receiver, headers, doomed, survivor: started } = await apiAndTwoWorkers(FAST);
    const survivor = started as Server;

    const booking = book(api.url, headers, EVENTS);
    await until(() => receiver.received.length >= EVENTS / 4, 60_000, "a quarter of the deliveries");
    const killedAt = await killNow(doomed);
    const confirmed = await booking;
    expect(confirmed.size).toBe(EVENTS);
    await until(() => receipts(receiver).size >= confirmed.size, 90_000, "every event to arrive");
    expectAtLeastOnce(confirmed, receiver, killedAt);
    expect(survivor.child.exitCode).toBeNull();
    expect(await survivor.stop("SIGTERM")).toBe(0);
  });
});

describe("the embedded server killed with SIGKILL on SQLite", () => {
  it(`loses none of ${EVENTS} confirmed events across a restart`, { timeout: 180_000 }, async () => {
    const dataDir = tempDir();
    const env = { ...FAST, CAREHOOKS_DATA_DIR: dataDir, CAREHOOKS_SQLITE_SYNCHRONOUS: "FULL" };
    let server: Server | undefined;
    cleanups.push(async () => server?.stop("SIGKILL"));
    const { api, receiver, headers } = await prepare(env, async () => {
      server = await startServer(env);
      return server;
    });
    const booking = book(api.url, headers, EVENTS);
    await until(() => receiver.received.length >= EVENTS / 4, 60_000, "a quarter of the deliveries");
    const killedAt = await killNow(api);
    const confirmed = await booking;
    expect(confirmed.size).toBeGreaterThan(EVENTS / 4);

    server = await startServer(env);
    await until(() => receipts(receiver).size >= confirmed.size, 90_000, "every confirmed event to arrive");
    expectAtLeastOnce(confirmed, receiver, killedAt);
    expect(await server.stop("SIGTERM"), server.output()).toBe(0);
  });
});

/**
 * With the default lease (60 s), a crash must not stall delivery for a lease:
 * the dead process's deliveries are returned by a live worker once it stops
 * beating (PostgreSQL), or at once by the restarted server (SQLite).
 */
const DEFAULT_LEASE = {
  CAREHOOKS_ALLOW_HTTP: "true",
  CAREHOOKS_ALLOWED_TARGETS: "127.0.0.0/8",
  CAREHOOKS_RETRY_SCHEDULE: "100ms,200ms,400ms,800ms,1s",
  CAREHOOKS_SHUTDOWN_GRACE: "3s",
};
const SLOW_RECEIVER_MS = 150;
const BACKLOG = 400;

/** Events received after `since`: a delivery left in flight by a dead process is sent again, so it arrives again. */
function eventIdsReceived(receiver: Receiver, since: number): Set<string> {
  return new Set(
    receiver.received
      .filter((request) => request.at > since)
      .map((request) => (JSON.parse(request.body) as { event_id: string }).event_id),
  );
}

describe.runIf(dialects().includes("postgres"))("liveness on PostgreSQL", () => {
  it("returns a killed worker's deliveries within 20 s of the kill, with the default lease", {
    timeout: 120_000,
  }, async () => {
    // The survivor starts once the doomed worker holds leases: a worker refilling an endpoint's slots as
    // they free up keeps them, so a second worker started at the same time may never hold one.
    const { db, api, receiver, headers, doomed, startSurvivor } = await apiAndTwoWorkers(DEFAULT_LEASE, true);
    // Slow answers, so the doomed worker still holds what it held when it was seen holding it.
    receiver.answer = () => ({ status: 200, delayMs: 3 * SLOW_RECEIVER_MS });
    const client = new pg.Client({ connectionString: db.url.replace(/\?.*$/, "") });
    await client.connect();
    cleanups.push(() => client.end());
    const schema = new URL(db.url).searchParams.get("schema");
    await client.query(`SET search_path = "${schema}"`);

    const confirmed = await book(api.url, headers, BACKLOG);
    expect(confirmed.size).toBe(BACKLOG);
    // Kill the doomed worker while it holds leases.
    const heldBy = `SELECT d.event_id FROM delivery d JOIN worker w ON w.id = d.worker_id WHERE d.status = 'in_flight' AND w.pid = $1`;
    await until(
      async () => ((await client.query(heldBy, [doomed.child.pid])).rowCount ?? 0) >= 1,
      30_000,
      "the doomed worker to hold leases",
    );
    const survivor = await startSurvivor();
    const killedAt = await killNow(doomed);
    const held = (await client.query(heldBy, [doomed.child.pid])).rows.map((row) => row.event_id as string);
    expect(held.length).toBeGreaterThan(0);

    await until(
      () => held.every((id) => eventIdsReceived(receiver, killedAt).has(id)),
      30_000,
      "the dead worker's deliveries",
    );
    const recoveredAfter = Date.now() - killedAt;
    console.info(`${held.length} deliveries held by the killed worker arrived ${recoveredAfter} ms after the kill`);
    expect(recoveredAfter).toBeLessThan(20_000);
    // The survivor says so in its metrics.
    const metrics = await (await fetch(`${survivor.url}/metrics`)).text();
    const returned = Number(/^carehooks_leases_returned_total (\d+)$/m.exec(metrics)?.[1] ?? 0);
    expect(returned).toBeGreaterThanOrEqual(held.length);
    await until(() => receipts(receiver).size >= confirmed.size, 60_000, "every event to arrive");
    expectAtLeastOnce(confirmed, receiver, killedAt);
    expect(await survivor.stop("SIGTERM")).toBe(0);
  });
});

describe("liveness on SQLite", () => {
  it("refuses a second serve on the same database, and takes over the lock of a killed one", {
    timeout: 120_000,
  }, async () => {
    const dataDir = tempDir();
    const env = { ...DEFAULT_LEASE, CAREHOOKS_DATA_DIR: dataDir };
    let server: Server | undefined;
    cleanups.push(async () => server?.stop("SIGKILL"));
    const { api, receiver, headers } = await prepare(env, async () => {
      server = await startServer(env);
      return server;
    });
    const second = await run(["serve", "--port", "0"], env);
    expect(second.code).not.toBe(0);
    expect(second.stderr).toMatch(
      new RegExp(`carehooks\\.db is in use by another carehooks serve \\(pid ${api.child.pid} on `),
    );

    receiver.answer = () => ({ status: 200, delayMs: SLOW_RECEIVER_MS });
    const confirmed = await book(api.url, headers, BACKLOG);
    await until(() => receiver.received.length >= 20, 30_000, "deliveries to start");
    const killedAt = await killNow(api);
    const file = path.join(dataDir, "carehooks.db");
    const raw = new BetterSqlite3(file, { readonly: true });
    const held = raw
      .prepare("SELECT event_id FROM delivery WHERE status = 'in_flight'")
      .all()
      .map((row) => (row as { event_id: string }).event_id);
    raw.close();
    expect(held.length).toBeGreaterThan(0);

    const restartedAt = Date.now();
    server = await startServer(env);
    await until(
      () => held.every((id) => eventIdsReceived(receiver, restartedAt).has(id)),
      30_000,
      "the dead process's deliveries",
    );
    const recoveredAfter = Date.now() - restartedAt;
    console.info(`${held.length} deliveries left in flight arrived ${recoveredAfter} ms after the restart`);
    expect(recoveredAfter).toBeLessThan(15_000);
    await until(() => receipts(receiver).size >= confirmed.size, 60_000, "every confirmed event to arrive");
    expectAtLeastOnce(confirmed, receiver, killedAt);
    expect(await server.stop("SIGTERM"), server.output()).toBe(0);
    // The holder's note goes with it; the lock file stays (removing it could let two processes lock two files).
    expect(fs.existsSync(`${file}.lock.json`)).toBe(false);
  });
});

/** An ordered webhook on its own receiver: its id, the receiver, and each resource's event ids in order of first receipt. */
async function orderedWebhook(url: string, headers: Record<string, string>) {
  const receiver = await startReceiver();
  cleanups.push(() => receiver.close());
  receiver.answer = () => ({ status: 200, delayMs: 10 });
  const hook = await fetch(`${url}/notification/v1/connect/webhook/subscriptions`, {
    method: "POST",
    headers,
    body: JSON.stringify({
      endpoint: receiver.url,
      event_names: ["appointment.created", "appointment.updated"],
      ordering: "per_resource",
    }),
  });
  expect(hook.status).toBe(201);
  const firstReceipts = () => {
    const seen = new Map<string, string[]>();
    const counted = new Set<string>();
    for (const request of receiver.received) {
      const event = String(request.headers["webhook-id"]);
      if (counted.has(event)) continue;
      counted.add(event);
      const id = (JSON.parse(request.body) as { data: { appointment_id: string } }).data.appointment_id;
      seen.set(id, [...(seen.get(id) ?? []), event]);
    }
    return { seen, count: counted.size };
  };
  return { id: ((await hook.json()) as { id: string }).id, receiver, firstReceipts };
}

/** Rounds of changes to each appointment (appointment.updated events), through whichever server is up. */
async function updateRounds(
  url: () => string,
  headers: Record<string, string>,
  appointments: string[],
  rounds: number,
) {
  for (let round = 0; round < rounds; round++) {
    for (const appointment of appointments) {
      for (;;) {
        const answer = await fetch(`${url()}/dr/v1/business/appointments/${appointment}`, {
          method: "PATCH",
          headers,
          body: JSON.stringify({ notes: `round ${round}` }),
        }).catch(() => undefined);
        if (answer?.status === 200) break;
        // The server is down (killed, restarting): try again shortly.
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
  }
}

/** Each resource's events arrived in the order written (a change retried after a kill may add one more). */
function expectInOrder(seen: Map<string, string[]>, appointments: string[], perResource: number): void {
  for (const appointment of appointments) {
    const events = seen.get(appointment) ?? [];
    expect(events.length).toBeGreaterThanOrEqual(perResource);
    expect([...events].sort()).toEqual(events);
  }
}

/** Every appointment has had at least `perResource` events arrive. */
const allArrived = (seen: Map<string, string[]>, appointments: string[], perResource: number) =>
  appointments.every((appointment) => (seen.get(appointment)?.length ?? 0) >= perResource);

describe.runIf(dialects().includes("postgres"))("per-resource ordering with its sender killed on PostgreSQL", () => {
  it("keeps each resource's events in the order written across the takeover", { timeout: 120_000 }, async () => {
    const { db, api, headers } = await apiAndTwoWorkers(FAST);
    const { id: webhookId, receiver, firstReceipts } = await orderedWebhook(api.url, headers);
    const appointments = [...(await book(api.url, headers, 30))];
    const rounds = 3;
    const updates = updateRounds(() => api.url, headers, appointments, rounds);

    // Kill whichever worker is sending this webhook's deliveries.
    const client = new pg.Client({ connectionString: db.url.replace(/\?.*$/, "") });
    await client.connect();
    cleanups.push(() => client.end());
    await client.query(`SET search_path = "${new URL(db.url).searchParams.get("schema")}"`);
    const senderPid = async () =>
      (
        await client.query("SELECT w.pid FROM subscription s JOIN worker w ON w.id = s.sender WHERE s.id = $1", [
          webhookId,
        ])
      ).rows[0]?.pid as number | undefined;
    await until(() => receiver.received.length >= 30, 30_000, "the first deliveries");
    process.kill(await until(senderPid, 30_000, "a sender"), "SIGKILL");
    await updates;

    await until(() => allArrived(firstReceipts().seen, appointments, 1 + rounds), 90_000, "every event to arrive");
    expectInOrder(firstReceipts().seen, appointments, 1 + rounds);
  });
});

describe("per-resource ordering with the embedded server killed on SQLite", () => {
  it("keeps each resource's events in the order written across the restart", { timeout: 120_000 }, async () => {
    const dataDir = tempDir();
    const env = { ...FAST, CAREHOOKS_DATA_DIR: dataDir };
    let server: Server | undefined;
    cleanups.push(async () => server?.stop("SIGKILL"));
    const { api, headers } = await prepare(env, async () => {
      server = await startServer(env);
      return server;
    });
    const { receiver, firstReceipts } = await orderedWebhook(api.url, headers);
    const appointments = [...(await book(api.url, headers, 20))];
    const rounds = 3;
    let url = api.url;
    const updates = updateRounds(() => url, headers, appointments, rounds);
    await until(() => receiver.received.length >= 25, 30_000, "the first deliveries");
    await killNow(server as Server);
    server = await startServer({ ...env, CAREHOOKS_PORT: new URL(api.url).port });
    url = server.url;
    await updates;

    await until(() => allArrived(firstReceipts().seen, appointments, 1 + rounds), 90_000, "every event to arrive");
    expectInOrder(firstReceipts().seen, appointments, 1 + rounds);
    expect(await server.stop("SIGTERM"), server.output()).toBe(0);
  });
});
