/**
 * Two worker processes on one PostgreSQL database: one worker at a time sends
 * an endpoint's deliveries (its `sender`), so the per-endpoint cap holds
 * across them though each leases ahead; and the breaker, kept in each worker's
 * memory, still degrades a failing webhook to one probe at a time and brings
 * it back when it answers.
 */
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateMasterKey } from "../src/domain/key-box.js";
import { accessToken, createClient, type Server, startServer } from "./support/binary.js";
import { createTestDatabase, dialects, type TestDatabase } from "./support/databases.js";
import { booking, until } from "./support/fixtures.js";
import { openCounter, type Receiver, startReceiver } from "./support/receiver.js";

const WEBHOOKS = "/notification/v1/connect/webhook/subscriptions";
const APPOINTMENTS = "/dr/v1/business/appointments";
const CAP = 3;

describe.runIf(dialects().includes("postgres"))("two workers on PostgreSQL", () => {
  let db: TestDatabase;
  const servers: Server[] = [];
  const receivers: Receiver[] = [];
  let api: Server;
  let headers: Record<string, string>;

  beforeAll(async () => {
    db = await createTestDatabase("postgres");
    const env = {
      CAREHOOKS_DATABASE_URL: db.url,
      CAREHOOKS_MASTER_KEY: generateMasterKey(),
      CAREHOOKS_JWT_SECRET: generateMasterKey(),
      CAREHOOKS_ALLOW_HTTP: "true",
      CAREHOOKS_ALLOWED_TARGETS: "127.0.0.0/8",
      CAREHOOKS_RETRY_SCHEDULE: "200ms,300ms,300ms,300ms,300ms,300ms,300ms,300ms,300ms,300ms",
      CAREHOOKS_BREAKER_THRESHOLD: "4",
      CAREHOOKS_MAX_IN_FLIGHT_PER_ENDPOINT: String(CAP),
      // Room for more than an endpoint's cap at each worker: the cap must hold across them by itself.
      CAREHOOKS_MAX_IN_FLIGHT: "8",
      CAREHOOKS_POLL_INTERVAL: "200ms",
      CAREHOOKS_SHUTDOWN_GRACE: "2s",
    };
    const client = await createClient(env, "Two Workers");
    api = await startServer({ ...env, CAREHOOKS_ROLE: "api" });
    servers.push(api, await startServer({ ...env, CAREHOOKS_ROLE: "worker" }));
    servers.push(await startServer({ ...env, CAREHOOKS_ROLE: "worker" }));
    headers = { authorization: `Bearer ${await accessToken(api.url, client)}`, "content-type": "application/json" };
  });
  afterAll(async () => {
    for (const server of servers) await server.stop("SIGTERM");
    for (const receiver of receivers) await receiver.close();
    await db?.drop();
  });

  async function webhookTo(receiver: Receiver): Promise<string> {
    const response = await fetch(`${api.url}${WEBHOOKS}`, {
      method: "POST",
      headers,
      body: JSON.stringify({ endpoint: receiver.url, event_names: ["appointment.created"] }),
    });
    expect(response.status).toBe(201);
    return ((await response.json()) as { id: string }).id;
  }

  async function book(count: number): Promise<void> {
    for (let i = 0; i < count; i++) {
      const response = await fetch(`${api.url}${APPOINTMENTS}`, {
        method: "POST",
        headers,
        body: JSON.stringify(booking),
      });
      expect(response.status).toBe(201);
    }
  }

  const stateOf = async (id: string) =>
    ((await (await fetch(`${api.url}${WEBHOOKS}/${id}`, { headers })).json()) as { data: { state: string } }).data
      .state;

  /** Subscriptions that have a sending worker now. */
  async function withSender(): Promise<number> {
    const url = new URL(db.url);
    const schema = url.searchParams.get("schema");
    url.searchParams.delete("schema");
    const client = new pg.Client({ connectionString: url.toString() });
    await client.connect();
    try {
      const { rows } = await client.query(
        `SELECT count(*)::int AS n FROM "${schema}".subscription WHERE sender IS NOT NULL`,
      );
      return (rows[0] as { n: number }).n;
    } finally {
      await client.end();
    }
  }

  /** Attempts a worker has made, from its own /metrics. */
  async function attemptsBy(worker: Server): Promise<number> {
    const text = await (await fetch(`${worker.url}/metrics`)).text();
    let total = 0;
    for (const line of text.split("\n")) {
      const match = /^carehooks_delivery_attempts_total\{[^}]*\} (\d+)/.exec(line);
      if (match) total += Number(match[1]);
    }
    return total;
  }

  it("never opens more than the per-endpoint cap at one endpoint, with two workers each able to", async () => {
    const [slow, other] = [await startReceiver(), await startReceiver()];
    receivers.push(slow, other);
    const counters = [slow, other].map((receiver) => openCounter(receiver, () => ({ status: 200, delayMs: 100 })));
    const ids = [await webhookTo(slow), await webhookTo(other)];
    const before = (await attemptsBy(servers[1] as Server)) + (await attemptsBy(servers[2] as Server));
    await book(40);
    await slow.waitFor(40, 30_000);
    await other.waitFor(40, 30_000);
    for (const counter of counters) {
      expect(counter.peak()).toBeLessThanOrEqual(CAP);
      expect(counter.peak()).toBe(CAP);
    }
    for (const id of ids) expect(await stateOf(id)).toBe("active");
    // Every delivery was attempted once, by one worker or the other (their metrics count it after the response).
    const attempts = async () => (await attemptsBy(servers[1] as Server)) + (await attemptsBy(servers[2] as Server));
    await until(async () => (await attempts()) - before === 80, 5000, "80 attempts counted");
    // Nothing in flight: no subscription keeps a sender.
    await until(async () => (await withSender()) === 0, 5000, "senders cleared");
  });

  it("degrades a failing webhook, probes one at a time across both workers, and recovers", async () => {
    const receiver = await startReceiver();
    receivers.push(receiver);
    let failing = true;
    const counter = openCounter(receiver, () => ({ status: failing ? 500 : 200, delayMs: 50 }));
    const id = await webhookTo(receiver);
    await book(12);
    await until(async () => (await stateOf(id)) === "degraded", 20_000, "the webhook to be degraded");
    // Exactly one worker wrote the change; the other followed it.
    const transitions = async () => {
      let total = 0;
      for (const worker of [servers[1], servers[2]] as Server[]) {
        const text = await (await fetch(`${worker.url}/metrics`)).text();
        total += Number(/^carehooks_breaker_transitions_total\{state="degraded"\} (\d+)$/m.exec(text)?.[1] ?? 0);
      }
      return total;
    };
    await until(async () => (await transitions()) >= 1, 5_000, "the degraded state to be counted");
    expect(await transitions()).toBe(1);
    // While degraded: one request at a time, whichever worker probes.
    await until(() => counter.open() === 0, 5_000, "no request open");
    counter.restart();
    const before = receiver.received.length;
    await until(() => receiver.received.length >= before + 3, 20_000, "three probes");
    expect(counter.peak()).toBe(1);
    const recoveredAt = Date.now();
    failing = false;
    await until(async () => (await stateOf(id)) === "active", 20_000, "the webhook to recover");
    const delivered = () =>
      new Set(receiver.received.filter((request) => request.at > recoveredAt).map((r) => r.headers["webhook-id"]));
    await until(() => delivered().size >= 12, 20_000, "every event to arrive once it answers");
  });
});
