/**
 * Two `serve --role api` processes on one PostgreSQL database, each with its
 * caches of API clients and webhooks: a change made through one process (or
 * the CLI) takes effect at once in the process that made it and within 1 s
 * in the other, with CAREHOOKS_CACHE_TTL far longer (60 s), so only the
 * announcements on the LISTEN connection can have told it.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateMasterKey } from "../src/domain/key-box.js";
import type { DialectAdapter } from "../src/store/dialect/adapter.js";
import { openDatabase } from "../src/store/open.js";
import { run, type Server, startServer } from "./support/binary.js";
import { createTestDatabase, dialects, type TestDatabase } from "./support/databases.js";
import { booking } from "./support/fixtures.js";

const WEBHOOKS = "/notification/v1/connect/webhook/subscriptions";
const APPOINTMENTS = "/dr/v1/business/appointments";
const BOUND_MS = 1000;

describe.runIf(dialects().includes("postgres"))("two API processes on one PostgreSQL database", () => {
  let database: TestDatabase;
  let env: Record<string, string>;
  let servers: Server[] = [];
  let a: Server;
  let b: Server;
  let adapter: DialectAdapter;

  async function newClient(business: string): Promise<{ clientId: string; token: string }> {
    const created = await run(["clients", "create", "--business", business, "--scopes", "all", "--json"], env);
    expect(created.code, created.stderr).toBe(0);
    const { client_id, client_secret } = JSON.parse(created.stdout);
    const login = await fetch(`${a.url}/connect-auth/v1/account/login`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ client_id, client_secret }),
    });
    return { clientId: client_id, token: ((await login.json()) as { access_token: string }).access_token };
  }

  beforeAll(async () => {
    database = await createTestDatabase("postgres");
    env = {
      CAREHOOKS_DATABASE_URL: database.url,
      CAREHOOKS_MASTER_KEY: generateMasterKey(),
      CAREHOOKS_JWT_SECRET: generateMasterKey(),
      CAREHOOKS_ROLE: "api",
      CAREHOOKS_CACHE_TTL: "60s",
    };
    a = await startServer(env);
    servers.push(a);
    b = await startServer(env);
    servers.push(b);
    adapter = openDatabase(database.url, { sqliteSynchronous: "FULL", poolSize: 2 });
  });
  afterAll(async () => {
    await Promise.all(servers.map((server) => server.stop("SIGKILL")));
    servers = [];
    await adapter?.close();
    await database?.drop();
  });

  function call(server: Server, token: string, method: string, path: string, body?: unknown): Promise<Response> {
    return fetch(`${server.url}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        ...(body === undefined ? {} : { "content-type": "application/json" }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
  }

  /** Milliseconds from `since` until `probe` holds; fails past the bound with room to spare. */
  async function heldAfter(since: number, probe: () => Promise<boolean>): Promise<number> {
    for (;;) {
      if (await probe()) return Date.now() - since;
      if (Date.now() - since > 5 * BOUND_MS) throw new Error("never held");
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }

  it("refuses a client revoked with the CLI in both processes within 1 s", async () => {
    const { clientId, token } = await newClient("Revoked Clinic");
    // Both processes have the client cached.
    for (const server of [a, b]) expect((await call(server, token, "GET", WEBHOOKS)).status).toBe(200);
    const revoked = await run(["clients", "revoke", clientId], env);
    expect(revoked.code, revoked.stderr).toBe(0);
    // From revoked_at, set before the CLI's transaction began: the bound is measured generously.
    const row = await adapter.db
      .selectFrom("api_client")
      .select("revoked_at")
      .where("id", "=", clientId)
      .executeTakeFirstOrThrow();
    for (const server of [a, b]) {
      const elapsed = await heldAfter(
        row.revoked_at as number,
        async () => (await call(server, token, "GET", WEBHOOKS)).status === 401,
      );
      expect(elapsed).toBeLessThan(BOUND_MS);
    }
  });

  describe("webhooks changed in one process", () => {
    let token: string;
    let first: string;

    /** The webhooks a create on `server` made deliveries for. */
    async function deliveredTo(server: Server): Promise<string[]> {
      const created = await call(server, token, "POST", APPOINTMENTS, booking);
      expect(created.status).toBe(201);
      const { appointment_id } = (await created.json()) as { appointment_id: string };
      const rows = await adapter.db
        .selectFrom("delivery")
        .innerJoin("event", "event.id", "delivery.event_id")
        .select("delivery.subscription_id")
        .where("event.resource_id", "=", appointment_id)
        .execute();
      return rows.map((row) => row.subscription_id).sort();
    }

    /** Makes the change on A; it shows at once in A's next create and within 1 s in B's. */
    async function expectEverywhere(change: () => Promise<Response>, holds: (to: string[]) => boolean) {
      const response = await change();
      expect(response.ok).toBe(true);
      const changedAt = Date.now();
      expect(holds(await deliveredTo(a))).toBe(true);
      expect(await heldAfter(changedAt, async () => holds(await deliveredTo(b)))).toBeLessThan(BOUND_MS);
    }

    beforeAll(async () => {
      token = (await newClient("Webhook Clinic")).token;
      const created = await call(a, token, "POST", WEBHOOKS, {
        endpoint: "https://one.example.com/hook",
        event_names: ["appointment.created"],
      });
      first = ((await created.json()) as { id: string }).id;
      // B caches the business's webhooks: the first one alone.
      expect(await deliveredTo(b)).toEqual([first]);
    });

    /** Registers a webhook for appointment.created on A, checked everywhere with `holds`; returns its id. */
    async function registerEverywhere(endpoint: string, holds: (to: string[], id: string) => boolean): Promise<string> {
      let id = "";
      await expectEverywhere(
        async () => {
          const response = await call(a, token, "POST", WEBHOOKS, { endpoint, event_names: ["appointment.created"] });
          id = ((await response.clone().json()) as { id: string }).id;
          return response;
        },
        (to) => holds(to, id),
      );
      return id;
    }

    it("creates in the other process deliver to a new webhook within 1 s, and stop once it is deleted", async () => {
      const second = await registerEverywhere("https://two.example.com/hook", (to, id) => to.includes(id));
      await expectEverywhere(
        () => call(a, token, "DELETE", `${WEBHOOKS}/${second}`),
        (to) => !to.includes(second),
      );
    });

    it("creates in the other process stop delivering to a disabled webhook, and start again when enabled", async () => {
      await expectEverywhere(
        () => call(a, token, "POST", `${WEBHOOKS}/${first}/disable`),
        (to) => !to.includes(first),
      );
      // B reads the business's webhooks again, the disabled one left out ...
      const third = await registerEverywhere(
        "https://three.example.com/hook",
        (to, id) => to.includes(id) && !to.includes(first),
      );
      // ... so only the announcement of the enable can bring it back.
      await expectEverywhere(
        () => call(a, token, "POST", `${WEBHOOKS}/${first}/enable`),
        (to) => to.includes(first),
      );
      await call(a, token, "DELETE", `${WEBHOOKS}/${third}`);
    });

    it("creates in the other process follow a webhook's changed event names", async () => {
      await expectEverywhere(
        () => call(a, token, "PATCH", `${WEBHOOKS}/${first}`, { event_names: ["appointment.updated"] }),
        (to) => !to.includes(first),
      );
      await expectEverywhere(
        () => call(a, token, "PATCH", `${WEBHOOKS}/${first}`, { event_names: ["appointment.created"] }),
        (to) => to.includes(first),
      );
    });
  });
});
