/**
 * Turns configuration into the running parts: the migrated database, the
 * master key and JWT secret (generated into the data dir when embedded), and
 * the app context. Shared by `serve`, `migrate` and `clients`.
 */

import { randomBytes } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import type { FastifyBaseLogger } from "fastify";
import { AccessLogWriter } from "./audit/access-log-writer.js";
import { TokenService } from "./auth/tokens.js";
import { type Config, ConfigError, MASTER_KEY_PATTERN, MIN_JWT_SECRET_LENGTH } from "./config/load.js";
import { checkSecretFileMode, createPrivateDir } from "./config/private-files.js";
import { urlPolicyOf } from "./config/url-policy.js";
import { runRecoverTask } from "./delivery/recover.js";
import { generateMasterKey, KeyBox } from "./domain/key-box.js";
import { SCOPES } from "./domain/scopes.js";
import type { AppContext } from "./http/context.js";
import { Metrics } from "./ops/metrics.js";
import { createApiClient, newClientSecret } from "./store/api-clients.js";
import { countBusinesses, createBusiness } from "./store/businesses.js";
import { createCaches } from "./store/caches.js";
import { queueLag } from "./store/deliveries.js";
import type { DialectAdapter } from "./store/dialect/adapter.js";
import { dialectOf, migrateDatabase, openDatabase } from "./store/open.js";
import { batchesCreates, outboxBatcherOf } from "./store/outbox-batch.js";
import { putSettingOnce } from "./store/settings.js";
import { unfinishedTasks } from "./store/tasks.js";

const MASTER_KEY_CHECK = "master_key_check";

/** How a serving process opens its database; a command that runs and exits keeps SQLite's defaults. */
export interface ServingOptions {
  /** Called when the storage can no longer promise durability: the process should stop. */
  readonly onStorageFailure?: (error: Error) => void;
  /** SQLite: copy the log back on a thread of its own, not in the COMMIT that fills it. */
  readonly sqliteCheckpoints?: "auto" | "background";
  /** PostgreSQL: a worker's commits do not wait for the log flush (see DialectOptions). */
  readonly postgresAsynchronousCommits?: boolean;
}

export async function openMigratedDatabase(config: Config, serving: ServingOptions = {}): Promise<DialectAdapter> {
  const adapter = openDatabase(config.databaseUrl, {
    sqliteSynchronous: config.sqliteSynchronous,
    sqliteBusyTimeoutMs: config.sqliteBusyTimeout,
    poolSize: config.databasePoolSize,
    cacheStalenessMs: config.cacheStaleness,
    createBatch: config.createBatch,
    ...serving,
  });
  try {
    await migrateDatabase(adapter);
  } catch (error) {
    await adapter.close();
    if (adapter.isUnavailable(error)) throw new Error(`cannot reach the database: ${(error as Error).message}`);
    throw error;
  }
  return adapter;
}

/** Reads a secret file from the data dir, creating it (mode 0600, in a 0700 directory) on first start. */
function secretFile(dataDir: string, name: string, variable: string, generate: () => string): string {
  const file = path.join(dataDir, name);
  try {
    const value = fs.readFileSync(file, "utf8").trim();
    checkSecretFileMode(file, variable);
    return value;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
  }
  createPrivateDir(dataDir);
  const value = generate();
  try {
    fs.writeFileSync(file, `${value}\n`, { mode: 0o600, flag: "wx" });
    return value;
  } catch (error) {
    // Another process created it first: use theirs.
    if ((error as NodeJS.ErrnoException).code === "EEXIST") return fs.readFileSync(file, "utf8").trim();
    throw error;
  }
}

export interface Secrets {
  readonly masterKey: string;
  readonly jwtSecret: string;
}

/** Reads or generates the secrets; checked before the database is touched, so a mis-set server fails fast. */
export function resolveSecrets(config: Config): Secrets {
  if (dialectOf(config.databaseUrl) === "postgres") {
    const missing = [
      config.masterKey === undefined && "CAREHOOKS_MASTER_KEY",
      config.jwtSecret === undefined && "CAREHOOKS_JWT_SECRET",
    ].filter(Boolean);
    if (missing.length > 0) {
      throw new ConfigError(
        `${missing.join(" and ")} must be set with PostgreSQL (shared by every process); generate one with: openssl rand -hex 32`,
      );
    }
    return { masterKey: config.masterKey as string, jwtSecret: config.jwtSecret as string };
  }
  const masterKey =
    config.masterKey ?? secretFile(config.dataDir, "master.key", "CAREHOOKS_MASTER_KEY", generateMasterKey);
  const jwtSecret =
    config.jwtSecret ??
    secretFile(config.dataDir, "jwt.secret", "CAREHOOKS_JWT_SECRET", () => randomBytes(32).toString("base64url"));
  // A file is held to the rules the environment's value is held to.
  if (!MASTER_KEY_PATTERN.test(masterKey)) {
    throw new ConfigError(`${path.join(config.dataDir, "master.key")} must hold 64 hex characters (32 random bytes)`);
  }
  if (jwtSecret.length < MIN_JWT_SECRET_LENGTH) {
    throw new ConfigError(
      `${path.join(config.dataDir, "jwt.secret")} must hold at least ${MIN_JWT_SECRET_LENGTH} characters`,
    );
  }
  return { masterKey, jwtSecret };
}

/** Refuses a master key other than the one the database was set up with: it could not open the stored signing keys. */
export async function checkMasterKey(adapter: DialectAdapter, keyBox: KeyBox): Promise<void> {
  const stored = await putSettingOnce(adapter.db, MASTER_KEY_CHECK, keyBox.checkValue());
  if (!keyBox.matches(stored)) {
    throw new ConfigError(
      `CAREHOOKS_MASTER_KEY (id ${keyBox.keyId}) is not the key this database was set up with (id ${stored.split(".")[0]})`,
    );
  }
}

export async function createContext(
  config: Config,
  adapter: DialectAdapter,
  secrets: Secrets = resolveSecrets(config),
): Promise<AppContext> {
  const keyBox = new KeyBox(secrets.masterKey);
  await checkMasterKey(adapter, keyBox);
  const urlPolicy = urlPolicyOf(config);
  return {
    config,
    adapter,
    db: adapter.db,
    keyBox,
    tokens: new TokenService(secrets.jwtSecret, config.accessTokenTtl),
    urlPolicy,
    audit: new AccessLogWriter(adapter.db),
    wakeup: adapter.createWakeup(),
    caches: createCaches(adapter, config),
    metrics: new Metrics(
      async (gauge) => {
        const lag = await queueLag(adapter, Date.now());
        gauge.set({ state: "pending" }, lag.pending);
        gauge.set({ state: "in_flight" }, lag.inFlight);
        gauge.set({ state: "oldest_due_seconds" }, lag.oldestDueMs / 1000);
      },
      adapter.storageStats?.bind(adapter),
      // Only where creates are batched: a worker writes none, and with CAREHOOKS_CREATE_BATCH=1 each goes alone.
      config.role !== "worker" && batchesCreates(adapter) ? () => outboxBatcherOf(adapter).stats : undefined,
    ),
  };
}

export interface DemoCredentials {
  readonly businessId: string;
  readonly clientId: string;
  readonly clientSecret: string;
}

/** On the first start of an embedded server, a demo business and a client with every scope. */
export async function createDemoDataOnce(adapter: DialectAdapter): Promise<DemoCredentials | undefined> {
  if (adapter.name !== "sqlite" || (await countBusinesses(adapter.db)) > 0) return undefined;
  // Hashed before the transaction: nothing but the database is awaited inside one.
  const credentials = await newClientSecret();
  // One transaction: a crash between the two inserts must not leave a business whose credentials were never shown.
  return adapter.db.transaction().execute(async (trx) => {
    if ((await countBusinesses(trx)) > 0) return undefined;
    const business = await createBusiness(trx, "Demo Clinic");
    const { client, secret } = await createApiClient(
      trx,
      { businessId: business.id, name: "demo", scopes: SCOPES },
      Date.now(),
      credentials,
    );
    return { businessId: business.id, clientId: client.id, clientSecret: secret };
  });
}

/** Recover tasks a stopped process left unfinished are picked up again (re-queuing is idempotent). */
export async function resumeTasks(ctx: AppContext, log: FastifyBaseLogger): Promise<void> {
  for (const task of await unfinishedTasks(ctx.db)) {
    log.info({ task: task.id }, "resuming recover task");
    void runRecoverTask(ctx.db, ctx.wakeup, log, task);
  }
}
