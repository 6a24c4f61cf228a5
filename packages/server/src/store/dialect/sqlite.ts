import path from "node:path";
import BetterSqlite3 from "better-sqlite3";
import { Kysely } from "kysely";
import { createPrivateDir, createPrivateFile, tightenFiles } from "../../config/private-files.js";
import { BoundedMap } from "../../domain/bounded-map.js";
import type { Database } from "../schema.js";
import { LocalWakeup } from "../wakeup.js";
import { DEFAULT_CREATE_BATCH, type DialectAdapter, type DialectOptions, type Migration } from "./adapter.js";
import { BusyGate } from "./sqlite-busy.js";
import { dataVersionFeed } from "./sqlite-changes.js";
import { Checkpointer } from "./sqlite-checkpointer.js";
import { DurableSqliteDialect } from "./sqlite-durable.js";
import { syncDirectory, WalFlusher } from "./sqlite-wal-flusher.js";
import { WriteTurns } from "./sqlite-write-turns.js";

/** What a connection waits for another process's lock unless told otherwise, and what a migration always waits. */
const BUSY_TIMEOUT_MS = 5000;

const STATEMENT_CACHE_SIZE = 500;

/**
 * Kysely prepares every query anew; compiling SQL costs more than running
 * most of ours. The same SQL text reuses its prepared statement.
 */
function withStatementCache(raw: BetterSqlite3.Database, gate: BusyGate): BetterSqlite3.Database {
  const cache = new BoundedMap<string, BetterSqlite3.Statement>(STATEMENT_CACHE_SIZE);
  const prepare = raw.prepare.bind(raw);
  return new Proxy(raw, {
    get(target, property, receiver) {
      if (property !== "prepare") return Reflect.get(target, property, receiver);
      return (source: string) =>
        cache.getOrSet(source, () => gate.guard(prepare(source), source === "begin immediate"));
    },
  });
}

export function openSqlite(file: string, options: DialectOptions): DialectAdapter {
  if (file !== ":memory:") {
    createPrivateDir(path.dirname(path.resolve(file)));
    // SQLite gives the -wal and -shm it creates the database file's mode: a private file keeps all three private.
    createPrivateFile(file);
    tightenFiles([file, `${file}-wal`, `${file}-shm`]);
  }
  // A thread of this process (options.shared) waits as long as the thread that opened the database first.
  const busyTimeoutMs = options.shared?.busy?.timeoutMs ?? options.sqliteBusyTimeoutMs ?? BUSY_TIMEOUT_MS;
  const raw = new BetterSqlite3(file, { timeout: busyTimeoutMs });
  const gate = new BusyGate(options.shared?.busy?.gate);
  const journal = raw.pragma("journal_mode = WAL", { simple: true });
  // FULL is kept by flushing the log ourselves, off the event loop, where there is a log file to flush.
  const flushed = options.sqliteSynchronous === "FULL" && !raw.memory && journal === "wal";
  raw.pragma(`synchronous = ${flushed ? "NORMAL" : options.sqliteSynchronous}`);
  raw.pragma("foreign_keys = ON");
  // Savepoints (transactions sharing one) keep their undo pages in memory, not in a temporary file.
  raw.pragma("temp_store = MEMORY");
  const background = options.sqliteCheckpoints === "background" && !raw.memory;
  if (background) raw.pragma("wal_autocheckpoint = 0");
  if (flushed) syncDirectory(path.dirname(path.resolve(file)));
  const wal = flushed
    ? new WalFlusher(`${raw.name}-wal`, options.onStorageFailure, options.shared?.wal, {
        waitForOwnCommits: options.sqliteWaitForOwnCommits ?? true,
        // The dispatcher's claims and outcomes, on a connection that waits for its other commits.
        relaxedCommits: options.sqliteWaitForOwnCommits !== false,
      })
    : undefined;
  const turns = raw.memory ? undefined : new WriteTurns(options.shared?.writeTurns);
  // The process's first connection checkpoints (a thread's is `shared`); a file, which `background` needs, has turns.
  const checkpointer =
    background && turns && !options.shared
      ? new Checkpointer(raw.name, turns.sharedState, options.onStorageFailure)
      : undefined;
  const changes = dataVersionFeed(raw);
  const dialect = new DurableSqliteDialect(withStatementCache(raw, gate), {
    wal,
    turns,
    onRolledBack: changes.dropAll,
  });
  const db = new Kysely<Database>({ dialect });
  const driver = dialect.createDriver();
  const relaxed = wal?.relaxesCommits ?? false;
  const shared = turns && {
    writeTurns: turns.sharedState,
    ...(wal ? { wal: wal.sharedState } : {}),
    busy: { timeoutMs: busyTimeoutMs, gate: gate.sharedState },
  };

  return {
    name: "sqlite",
    db,
    queueTransaction: (work) => driver.transaction(relaxed, work),
    writeTransaction: (work) => driver.transaction(false, work),
    async migrate(migrations: readonly Migration[]): Promise<number[]> {
      // A migration is worth waiting for: a second process starting at once waits here for the first.
      raw.pragma(`busy_timeout = ${Math.max(busyTimeoutMs, BUSY_TIMEOUT_MS)}`);
      try {
        raw.exec(
          "CREATE TABLE IF NOT EXISTS schema_migration (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)",
        );
        const applied: number[] = [];
        for (const migration of migrations) {
          // IMMEDIATE takes the write lock first, so a second process waits here and then sees the row.
          const apply = raw.transaction(() => {
            const done = raw.prepare("SELECT 1 FROM schema_migration WHERE version = ?").get(migration.version);
            if (done) return false;
            raw
              .prepare("INSERT INTO schema_migration (version, name, applied_at) VALUES (?, ?, ?)")
              .run(migration.version, migration.name, Date.now());
            raw.exec(migration.sql);
            return true;
          });
          if (apply.immediate()) applied.push(migration.version);
        }
        return applied;
      } finally {
        raw.pragma(`busy_timeout = ${busyTimeoutMs}`);
      }
    },
    async ping() {
      raw.prepare("SELECT 1").get();
    },
    async now() {
      return Date.now();
    },
    exclusiveWrites: true,
    wakeupSpacingMs: 0,
    ...(wal || checkpointer
      ? {
          storageStats: () => ({
            ...(wal ? { commits: wal.stats.committed, flushes: wal.stats.flushes } : {}),
            ...(checkpointer ? checkpointer.stats : {}),
          }),
        }
      : {}),
    ...(shared ? { shared } : {}),
    lockSkipLocked: (query) => query,
    // BEGIN IMMEDIATE already holds the only writer lock for the whole transaction.
    lockRows: (query) => query,
    createWakeup: () => new LocalWakeup(),
    changes,
    // A record, its event and its deliveries are statements of a transaction (store/outbox-sqlite.ts).
    writableCtes: false,
    createBatch: options.createBatch ?? DEFAULT_CREATE_BATCH,
    isUnavailable(error) {
      const code = (error as { code?: unknown })?.code;
      return typeof code === "string" && /^SQLITE_(BUSY|LOCKED|IOERR|FULL|CANTOPEN|READONLY|ABORT_ROLLBACK)/.test(code);
    },
    isInvalidText: () => false,
    isTransientAbort: () => false,
    isUniqueViolation(error) {
      const code = (error as { code?: unknown })?.code;
      return code === "SQLITE_CONSTRAINT_UNIQUE" || code === "SQLITE_CONSTRAINT_PRIMARYKEY";
    },
    async close() {
      await db.destroy();
      // The last connection to close copies the log back and removes it.
      await checkpointer?.stop();
    },
  };
}
