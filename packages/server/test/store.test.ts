import fs from "node:fs";
import path from "node:path";
import { sql } from "kysely";
import { afterEach, describe, expect, it } from "vitest";
import { type Config, ConfigError, loadConfig } from "../src/config/load.js";
import { generateMasterKey } from "../src/domain/key-box.js";
import { sweepExpired } from "../src/ops/retention.js";
import { createContext, openMigratedDatabase, resolveSecrets } from "../src/runtime.js";
import { createApiClient } from "../src/store/api-clients.js";
import { createBusiness } from "../src/store/businesses.js";
import { loadMigrations } from "../src/store/migrations.js";
import { migrateDatabase, openDatabase } from "../src/store/open.js";
import { issueRefreshToken } from "../src/store/refresh-tokens.js";
import { createTestDatabase, dialects, type TestDatabase } from "./support/databases.js";

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function database(dialect: "sqlite" | "postgres"): Promise<TestDatabase> {
  const db = await createTestDatabase(dialect);
  cleanups.push(() => db.drop());
  return db;
}

function configFor(db: TestDatabase, env: Record<string, string> = {}): Config {
  return loadConfig({ CAREHOOKS_DATABASE_URL: db.url, CAREHOOKS_DATA_DIR: db.dataDir, ...env });
}

describe("migrations", () => {
  it("number the same versions on both dialects", () => {
    const versions = (dialect: "sqlite" | "postgres") => loadMigrations(dialect).map((m) => `${m.version}_${m.name}`);
    expect(versions("sqlite")).toEqual(versions("postgres"));
    expect(versions("sqlite").length).toBeGreaterThan(0);
  });

  it.each(dialects())("apply once when four processes migrate %s at the same moment", async (dialect) => {
    const db = await database(dialect);
    const adapters = Array.from({ length: 4 }, () =>
      openDatabase(db.url, { sqliteSynchronous: "NORMAL", poolSize: 2 }),
    );
    cleanups.push(async () => Promise.all(adapters.map((adapter) => adapter.close())));
    const results = await Promise.all(adapters.map((adapter) => migrateDatabase(adapter)));
    const all = loadMigrations(dialect).map((m) => m.version);
    expect(results.flat().sort((a, b) => a - b)).toEqual(all);
    expect(await migrateDatabase(adapters[0]!)).toEqual([]);
  });

  it.runIf(dialects().includes("postgres"))("store every time as BIGINT milliseconds on PostgreSQL", async () => {
    const db = await database("postgres");
    const adapter = openDatabase(db.url, { sqliteSynchronous: "NORMAL", poolSize: 2 });
    cleanups.push(() => adapter.close());
    await migrateDatabase(adapter);
    const schema = new URL(db.url).searchParams.get("schema");
    const { rows } = await sql<{ column: string; type: string }>`
      SELECT table_name || '.' || column_name AS column, data_type AS type FROM information_schema.columns
      WHERE table_schema = ${schema} AND (column_name LIKE '%\_at' OR column_name LIKE '%\_time')`.execute(adapter.db);
    expect(rows.length).toBeGreaterThan(10);
    expect(rows.filter((row) => row.type !== "bigint")).toEqual([]);
  });

  it.each(dialects())("roll back a failing migration on %s, leaving no trace", async (dialect) => {
    const db = await database(dialect);
    const adapter = openDatabase(db.url, { sqliteSynchronous: "NORMAL", poolSize: 2 });
    cleanups.push(() => adapter.close());
    const broken = [
      { version: 1, name: "broken", sql: "CREATE TABLE half_done (id INTEGER); SELECT no_such_function();" },
    ];
    await expect(adapter.migrate(broken)).rejects.toThrow();
    const good = [{ version: 1, name: "good", sql: "CREATE TABLE half_done (id INTEGER);" }];
    expect(await adapter.migrate(good)).toEqual([1]);
  });
});

describe("secrets and the master key", () => {
  it("generates the master key and JWT secret into the data dir when embedded, once", async () => {
    const db = await database("sqlite");
    const config = configFor(db);
    const first = resolveSecrets(config);
    expect(first.masterKey).toMatch(/^[0-9a-f]{64}$/);
    expect(first.jwtSecret.length).toBeGreaterThanOrEqual(32);
    expect(resolveSecrets(config)).toEqual(first);
    const mode = fs.statSync(path.join(db.dataDir, "master.key")).mode & 0o777;
    expect(mode).toBe(0o600);
  });

  it("requires CAREHOOKS_MASTER_KEY and CAREHOOKS_JWT_SECRET with PostgreSQL", () => {
    const config = loadConfig({ CAREHOOKS_DATABASE_URL: "postgres://postgres@127.0.0.1/test" });
    expect(() => resolveSecrets(config)).toThrow(/CAREHOOKS_MASTER_KEY and CAREHOOKS_JWT_SECRET must be set/);
  });

  it.each(dialects())("refuses to start on %s with a master key other than the database's", async (dialect) => {
    const db = await database(dialect);
    const secrets = { CAREHOOKS_JWT_SECRET: generateMasterKey() };
    const first = configFor(db, { ...secrets, CAREHOOKS_MASTER_KEY: generateMasterKey() });
    const adapter = await openMigratedDatabase(first);
    cleanups.push(() => adapter.close());
    await createContext(first, adapter);
    await createContext(first, adapter);
    const other = configFor(db, { ...secrets, CAREHOOKS_MASTER_KEY: generateMasterKey() });
    await expect(createContext(other, adapter)).rejects.toThrow(ConfigError);
    await expect(createContext(other, adapter)).rejects.toThrow(/not the key this database was set up with/);
  });
});

describe("retention", () => {
  it.each(dialects())(
    "removes expired refresh tokens and idempotency keys on %s, and nothing else",
    async (dialect) => {
      const db = await database(dialect);
      const adapter = await openMigratedDatabase(configFor(db));
      cleanups.push(() => adapter.close());
      const business = await createBusiness(adapter.db, "Retention Clinic");
      const { client } = await createApiClient(adapter.db, {
        businessId: business.id,
        name: "t",
        scopes: ["webhooks:read"],
      });
      const now = Date.now();
      await issueRefreshToken(adapter.db, { clientId: client.id, ttlMs: -1 }, now);
      await issueRefreshToken(adapter.db, { clientId: client.id, ttlMs: 60_000 }, now);
      for (const [key, ttlMs] of [
        ["old", -1],
        ["new", 60_000],
      ] as const) {
        await adapter.db
          .insertInto("idempotency_key")
          .values({
            client_id: client.id,
            key,
            fingerprint: "f",
            status_code: 201,
            response_body: "{}",
            created_at: now,
            expires_at: now + ttlMs,
          })
          .execute();
      }
      expect(await sweepExpired(adapter.db, now)).toEqual({ refreshTokens: 1, idempotencyKeys: 1, portalSessions: 0 });
      expect(await sweepExpired(adapter.db, now)).toEqual({ refreshTokens: 0, idempotencyKeys: 0, portalSessions: 0 });
    },
  );
});

describe("configuration", () => {
  it("reads defaults, environment and flags in that order of precedence", () => {
    const defaults = loadConfig({});
    expect(defaults).toMatchObject({
      host: "127.0.0.1",
      port: 8080,
      bodyLimit: 1024 * 1024,
      accessTokenTtl: 15 * 60_000,
      refreshTokenTtl: 30 * 86_400_000,
      retrySchedule: [5_000, 300_000, 1_800_000, 7_200_000, 18_000_000, 36_000_000, 50_400_000, 72_000_000, 86_400_000],
      maxInFlight: 256,
      maxInFlightPerEndpoint: 10,
      lease: 60_000,
      sqliteSynchronous: "FULL",
      allowHttp: false,
    });
    expect(defaults.databaseUrl).toBe(`sqlite:${path.join("./data", "carehooks.db")}`);
    const env = loadConfig(
      { CAREHOOKS_PORT: "9000", CAREHOOKS_BODY_LIMIT: "64KiB", CAREHOOKS_DATA_DIR: "/srv/ch" },
      { port: "9001" },
    );
    expect(env.port).toBe(9001);
    expect(env.bodyLimit).toBe(65_536);
    expect(env.databaseUrl).toBe("sqlite:/srv/ch/carehooks.db");
  });

  it.each([
    [{ CAREHOOKS_PORT: "70000" }, /CAREHOOKS_PORT/],
    [{ CAREHOOKS_REQUEST_TIMEOUT: "soon" }, /CAREHOOKS_REQUEST_TIMEOUT.*duration/],
    [{ CAREHOOKS_BODY_LIMIT: "1GB" }, /CAREHOOKS_BODY_LIMIT.*size/],
    [{ CAREHOOKS_ALLOW_HTTP: "maybe" }, /CAREHOOKS_ALLOW_HTTP/],
    [{ CAREHOOKS_LEASE: "10s" }, /at least twice/],
    [{ CAREHOOKS_MASTER_KEY: "abc" }, /64 hex/],
    [{ CAREHOOKS_JWT_SECRET: "short" }, /at least 32/],
    [{ CAREHOOKS_DATABASE_URL: "mysql://x" }, /sqlite: or postgres/],
    [{ CAREHOOKS_SQLITE_SYNCHRONOUS: "OFF" }, /FULL, NORMAL/],
    [{ CAREHOOKS_RETRY_SCHEDULE: "" }, /at least one/],
  ])("refuses %o with a message naming the variable", (env, message) => {
    expect(() => loadConfig(env)).toThrow(ConfigError);
    expect(() => loadConfig(env)).toThrow(message);
  });
});
