/**
 * The per-process caches of API clients and webhooks (store/caches.ts), in
 * one process: what they keep; on SQLite, that a commit on any other
 * connection empties them; on PostgreSQL, that a LISTEN connection lost, or alive
 * but answering nothing, leaves no stale entry served for longer than
 * CAREHOOKS_CACHE_STALENESS. Across processes: scale-out-caches.test.ts.
 */
import fs from "node:fs";
import BetterSqlite3 from "better-sqlite3";
import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { revokeApiClient } from "../src/store/api-clients.js";
import {
  announceChanges,
  forgetChanges,
  notifySubscriptionsChanged,
  subscriptionsChanged,
} from "../src/store/changes.js";
import { ReadCache } from "../src/store/read-cache.js";
import { dialects } from "./support/databases.js";
import { until } from "./support/fixtures.js";
import { type Harness, startHarness, type Tenant } from "./support/harness.js";

const WEBHOOKS = "/notification/v1/connect/webhook/subscriptions";
const STALENESS_MS = 400;
const TTL_MS = 3000;

/** Revokes the client behind carehooks' back: no announcement, as an operator's UPDATE by hand would. */
async function revokeByHand(h: Harness, clientId: string): Promise<void> {
  await h.ctx.db.updateTable("api_client").set({ revoked_at: Date.now() }).where("id", "=", clientId).execute();
}

async function status(tenant: Tenant): Promise<number> {
  return (await tenant.request("GET", WEBHOOKS)).statusCode;
}

/** Milliseconds until the client's token is refused. */
async function refusedAfter(tenant: Tenant, timeoutMs: number): Promise<number> {
  const started = performance.now();
  await until(async () => (await status(tenant)) === 401, timeoutMs, "the token to be refused");
  return performance.now() - started;
}

/**
 * A tenant's webhook, and its business's live webhook ids as the cache has them (read once here, so
 * cached from now on).
 */
async function cachedWebhook(h: Harness, tenant?: Tenant): Promise<{ id: string; live: () => Promise<string[]> }> {
  tenant ??= await h.tenant();
  const hook = await tenant.request("POST", WEBHOOKS, {
    endpoint: "https://breaker.example.com/",
    event_names: ["appointment.created"],
  });
  const id = hook.json().id as string;
  const { businessId } = tenant;
  const live = async () =>
    (await h.ctx.caches.subscriptions.get(h.ctx.db, businessId)).map((subscription) => subscription.id);
  expect(await live()).toEqual([id]);
  return { id, live };
}

describe("caches on SQLite", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness("sqlite");
  });
  afterAll(async () => h?.close());

  /** A statement on a connection of its own, as the CLI, the dispatcher thread or a `sqlite3` shell would run it. */
  function onAnotherConnection(statement: string, ...parameters: unknown[]): void {
    const other = new BetterSqlite3(h.ctx.config.databaseUrl.replace(/^sqlite:/, ""), { timeout: 5000 });
    try {
      other.prepare(statement).run(...parameters);
    } finally {
      other.close();
    }
  }

  it("keep a client, and see a change committed on another connection at the next request", async () => {
    const [cached, changed] = [await h.tenant(), await h.tenant()];
    expect(await status(cached)).toBe(200);
    expect(await status(changed)).toBe(200);
    // Cached: a write on the API's own connection that does not announce itself goes unseen (no code path makes one).
    await revokeByHand(h, cached.clientId);
    expect(await status(cached)).toBe(200);
    onAnotherConnection("UPDATE api_client SET revoked_at = ? WHERE id = ?", Date.now(), changed.clientId);
    expect(await status(changed)).toBe(401);
    // Every cache was emptied, so the unannounced change on the API's own connection shows now too.
    expect(await status(cached)).toBe(401);
  });

  it("drop a client revoked through carehooks at once", async () => {
    const tenant = await h.tenant();
    expect(await status(tenant)).toBe(200);
    expect(await revokeApiClient(h.ctx.adapter, tenant.clientId)).toBe(true);
    expect(await status(tenant)).toBe(401);
  });

  it("drop a business's webhooks when another connection disables one (the dispatcher thread's breaker)", async () => {
    const { id, live } = await cachedWebhook(h);
    onAnotherConnection("UPDATE subscription SET state = 'disabled' WHERE id = ?", id);
    expect(await live()).toEqual([]);
  });

  it("answer a peek with what a read would serve without reading, and nothing where a read must go to the database", async () => {
    const tenant = await h.tenant();
    const subscriptions = h.ctx.caches.subscriptions;
    subscriptions.forget(tenant.businessId);
    expect(subscriptions.peek(tenant.businessId)).toBeUndefined();
    const { id } = await cachedWebhook(h, tenant);
    expect(subscriptions.peek(tenant.businessId)?.value.map((subscription) => subscription.id)).toEqual([id]);
    // A commit on another connection empties every cache, as it does for a read, once the reads that
    // share the check made before it are done (the test below).
    onAnotherConnection("UPDATE subscription SET state = 'disabled' WHERE id = ?", id);
    await null;
    expect(subscriptions.peek(tenant.businessId)).toBeUndefined();
    await subscriptions.get(h.ctx.db, tenant.businessId);
    expect(subscriptions.peek(tenant.businessId)?.value).toEqual([]);
    subscriptions.forget(tenant.businessId);
    expect(subscriptions.peek(tenant.businessId)).toBeUndefined();
  });

  it("share one check for other connections' commits among the reads under way, and check again after", async () => {
    const feed = h.ctx.adapter.changes;
    if (!feed) throw new Error("no change feed on SQLite");
    const tenant = await h.tenant();
    let resets = 0;
    const unwatch = feed.watch({ changed: () => {}, reset: () => (resets += 1) });
    try {
      // A callback of its own, in which nothing has checked yet.
      await new Promise((resolve) => setImmediate(resolve));
      const checked = feed.heardUntil();
      onAnotherConnection("UPDATE api_client SET revoked_at = ? WHERE id = ?", Date.now(), tenant.clientId);
      // The same stretch of work: its reads may be served as if they came before that commit.
      expect(feed.heardUntil()).toBe(checked);
      expect(resets).toBe(0);
      // Once the microtasks queued at the check have run, the next read checks again.
      await null;
      expect(feed.heardUntil()).toBeGreaterThan(checked);
      expect(resets).toBe(1);
    } finally {
      unwatch();
    }
  });

  it("drop what a read saw of a shared transaction that is then rolled back", async () => {
    const tenant = await h.tenant();
    const { id, live } = await cachedWebhook(h, tenant);
    const changed = [subscriptionsChanged(tenant.businessId)];
    // One turn of the event loop, so one shared SQLite transaction: A deletes the webhook, B reads the
    // business's webhooks into the cache (seeing A's delete), C makes the shared COMMIT fail.
    const a = h.ctx.db
      .transaction()
      .execute(async (trx) => {
        await trx.updateTable("subscription").set({ deleted_at: Date.now() }).where("id", "=", id).execute();
        await announceChanges(h.ctx.adapter, trx, changed);
      })
      .then(() => forgetChanges(h.ctx.adapter, changed));
    h.ctx.caches.subscriptions.forget(tenant.businessId);
    const b = h.ctx.db.transaction().execute(async (trx) => h.ctx.caches.subscriptions.get(trx, tenant.businessId));
    const c = h.ctx.db.transaction().execute(async (trx) => {
      // A foreign key checked only at COMMIT stands in for any failure there (I/O, a full disk).
      await sql`PRAGMA defer_foreign_keys = ON`.execute(trx);
      await trx.updateTable("subscription").set({ business_id: "biz_nobody" }).where("id", "=", id).execute();
    });
    const settled = await Promise.allSettled([a, b, c]);
    expect(settled.map((result) => result.status)).toEqual(["rejected", "rejected", "rejected"]);
    expect(await live()).toEqual([id]);
  });
});

describe.runIf(dialects().includes("postgres"))("caches on PostgreSQL", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness("postgres", {
      CAREHOOKS_CACHE_STALENESS: `${STALENESS_MS}ms`,
      CAREHOOKS_CACHE_TTL: `${TTL_MS}ms`,
    });
  });
  afterAll(async () => h?.close());

  /**
   * As another process would: the change and its NOTIFY in one transaction,
   * not passed to this process's caches directly, so only the LISTEN
   * connection can tell them.
   */
  async function revokeAnnounced(clientId: string): Promise<void> {
    await h.ctx.db.transaction().execute(async (trx) => {
      await trx.updateTable("api_client").set({ revoked_at: Date.now() }).where("id", "=", clientId).execute();
      await h.ctx.adapter.changes?.announce(trx, [`client:${clientId}`]);
    });
  }

  /** The LISTEN connection is open and answered a heartbeat lately. */
  const heard = () =>
    performance.now() - (h.ctx.adapter.changes?.heardUntil() ?? Number.NEGATIVE_INFINITY) < STALENESS_MS / 2;

  /** The pid of this process's LISTEN connection's backend. */
  async function listenerBackend(): Promise<number> {
    await until(heard, 5000, "the LISTEN connection");
    const { rows } = await sql<{ pid: number }>`
      SELECT pid FROM pg_stat_activity WHERE application_name = ${`carehooks listen ${process.pid}`}`.execute(h.ctx.db);
    expect(rows).toHaveLength(1);
    return (rows[0] as { pid: number }).pid;
  }

  it("keep a client until CACHE_TTL when it changes without an announcement", async () => {
    // The cache is trusted only while the LISTEN connection is heard, and a busy machine can delay its
    // beat past the staleness bound, when reads rightly go to the database (and store nothing). So the
    // read that fills the cache and the one that must be answered from it are each checked to have had
    // the connection heard throughout, with no reconnect (which empties the caches) in between, and the
    // whole try within the entry's TTL; a try where any of that fails is made again.
    const feed = h.ctx.adapter.changes;
    if (!feed) throw new Error("no change feed on PostgreSQL");
    let resets = 0;
    const unwatch = feed.watch({ changed: () => {}, reset: () => (resets += 1) });
    /** The client's answer, and whether the connection was heard over the whole request. */
    const heardOver = async (tenant: Tenant) => {
      const before = feed.heardUntil();
      const answer = await status(tenant);
      return { answer, heard: performance.now() - before <= STALENESS_MS && feed.heardUntil() >= before };
    };
    try {
      for (let attempt = 1; ; attempt += 1) {
        const tenant = await h.tenant();
        await until(heard, 5000, "the LISTEN connection");
        const [resetsBefore, filledAt] = [resets, performance.now()];
        const filled = await heardOver(tenant);
        expect(filled.answer).toBe(200);
        await revokeByHand(h, tenant.clientId);
        const cached = await heardOver(tenant);
        const clean =
          filled.heard && cached.heard && resets === resetsBefore && performance.now() - filledAt < TTL_MS / 2;
        if (clean || attempt === 5) {
          expect(clean, "a try with the LISTEN connection heard throughout, in 5").toBe(true);
          // Cached: the change was not announced, as no change made through carehooks is.
          expect(cached.answer).toBe(200);
          expect(await refusedAfter(tenant, TTL_MS + 2000)).toBeLessThan(TTL_MS + 1000);
          return;
        }
      }
    } finally {
      unwatch();
    }
  });

  it("drop a client when any process announces it", async () => {
    const tenant = await h.tenant();
    expect(await status(tenant)).toBe(200);
    await revokeAnnounced(tenant.clientId);
    expect(await refusedAfter(tenant, 2000)).toBeLessThan(STALENESS_MS);
  });

  it("drop a business's webhooks when code that changes subscriptions by id announces them (the breaker)", async () => {
    const { id, live } = await cachedWebhook(h);
    await h.ctx.db.transaction().execute(async (trx) => {
      await trx.updateTable("subscription").set({ state: "disabled" }).where("id", "=", id).execute();
      await notifySubscriptionsChanged(h.ctx.adapter, trx, [id, id]);
    });
    const started = performance.now();
    await until(async () => (await live()).length === 0, 2000, "the disabled webhook to leave the cache");
    expect(performance.now() - started).toBeLessThan(STALENESS_MS);
  });

  it("serve nothing once the LISTEN connection is lost, and start afresh when it is back", async () => {
    const tenant = await h.tenant();
    expect(await status(tenant)).toBe(200);
    await sql`SELECT pg_terminate_backend(${await listenerBackend()})`.execute(h.ctx.db);
    // Whatever changes while the process is deaf is never announced to it.
    await revokeByHand(h, tenant.clientId);
    expect(await refusedAfter(tenant, 2000)).toBeLessThan(STALENESS_MS + 400);

    // Reconnected (after 1 s), announcements are heard again.
    await until(heard, 5000, "the LISTEN connection to be back");
    const other = await h.tenant();
    expect(await status(other)).toBe(200);
    await revokeAnnounced(other.clientId);
    expect(await refusedAfter(other, 2000)).toBeLessThan(STALENESS_MS);
  });

  // SIGSTOP on the backend: the connection stays open and answers nothing, as one dropped by a NAT does.
  const localPostgres = (pid: number) => {
    try {
      return fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").startsWith("postgres");
    } catch {
      return false;
    }
  };

  it("serve nothing while the LISTEN connection answers nothing (PostgreSQL on this host only)", async (context) => {
    const tenant = await h.tenant();
    expect(await status(tenant)).toBe(200);
    const pid = await listenerBackend();
    if (!localPostgres(pid)) context.skip();
    process.kill(pid, "SIGSTOP");
    try {
      await revokeByHand(h, tenant.clientId);
      expect(await refusedAfter(tenant, 2000)).toBeLessThan(STALENESS_MS + 400);
    } finally {
      process.kill(pid, "SIGCONT");
    }
    await until(heard, 5000, "the LISTEN connection to answer again");
  });

  it("do not store a read that began before its key was dropped", async () => {
    let release: (value: string) => void = () => {};
    let reads = 0;
    const cache = new ReadCache(
      h.ctx.adapter.changes,
      // Generous: a late heartbeat must not make this cache read around itself.
      { kind: "client", capacity: 10, ttlMs: 60_000, stalenessMs: 60_000 },
      async () => {
        reads += 1;
        return new Promise<string>((resolve) => {
          release = resolve;
        });
      },
    );
    await until(heard, 5000, "the LISTEN connection");
    const first = cache.get(h.ctx.db, "cli_race");
    await until(() => reads === 1);
    h.ctx.adapter.changes?.deliverLocally(["client:cli_race"]);
    release("before the change");
    expect(await first).toBe("before the change");
    const second = cache.get(h.ctx.db, "cli_race");
    await until(() => reads === 2, 1000, "a second read");
    release("after the change");
    expect(await second).toBe("after the change");
    expect(await cache.get(h.ctx.db, "cli_race")).toBe("after the change");
    expect(reads).toBe(2);
  });
});
