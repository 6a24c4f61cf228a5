/**
 * What differs between SQLite and PostgreSQL, exposed as capabilities so the
 * repositories never ask which database they run on.
 */
import type { Kysely, SelectQueryBuilder } from "kysely";
import type { Database } from "../schema.js";
import type { Wakeup } from "../wakeup.js";

/** Positional values (`$1` on PostgreSQL, `?` on SQLite), or named ones for SQLite's `@name`. */
export type Parameters = readonly unknown[] | Readonly<Record<string, unknown>>;

/** Statements run inside a transaction straight on SQLite's connection (`queueTransaction`, `writeTransaction`). */
export interface SqlStatements {
  /** The rows of a statement that returns rows (a SELECT, or a write with RETURNING). */
  all<R>(text: string, parameters: Parameters): R[];
  /** How many rows a statement that returns none changed. */
  run(text: string, parameters: Parameters): number;
}

export interface Migration {
  readonly version: number;
  readonly name: string;
  readonly sql: string;
}

export interface DialectAdapter {
  readonly name: "sqlite" | "postgres";
  readonly db: Kysely<Database>;
  /**
   * SQLite: runs `work` (synchronous) as one transaction on the connection, its statements with no
   * query layer between them and SQLite (sqlite-durable.ts, `DurableSqliteDriver.transaction`): the
   * dispatcher's claims, outcomes and released leases. With the log flushed here it is relaxed:
   * answered once what it read is on disk but not its own commit, which follows within
   * BACKGROUND_FLUSH_MS. A power cut losing the last of them costs repeats, as an expired lease
   * does: PostgreSQL's workers commit without waiting for the disk for the same reason
   * (`postgresAsynchronousCommits`).
   */
  queueTransaction?<T>(work: (sql: SqlStatements) => T): Promise<T>;
  /**
   * SQLite: as `queueTransaction`, but answered only once its own commit is
   * on disk, as every write an API request waits for: the outbox's batches of
   * creates (store/outbox-batch.ts).
   */
  writeTransaction?<T>(work: (sql: SqlStatements) => T): Promise<T>;
  /** Applies the pending migrations, each in its own transaction; safe when processes race. Returns the versions applied. */
  migrate(migrations: readonly Migration[]): Promise<number[]>;
  /**
   * PostgreSQL: runs a hot statement as a named prepared statement outside any
   * transaction, so each pooled connection parses and plans it once (Kysely's
   * driver sends every query unnamed: parsed and planned every time, 1–2 ms for
   * the claim). Absent on SQLite, whose statements are cached by text.
   */
  preparedQuery?<R>(name: string, text: string, values: readonly unknown[]): Promise<R[]>;
  /**
   * The most creates written together, those reaching the outbox in one turn
   * of the event loop outside a transaction (store/outbox-batch.ts): one
   * statement on PostgreSQL, one transaction on SQLite; 1 writes each on its
   * own.
   */
  readonly createBatch: number;
  /** Resolves when the database answers a trivial query. */
  ping(): Promise<void>;
  /** True for errors that mean "the database cannot serve now" (connection lost, locked): a 503, not a 500. */
  isUnavailable(error: unknown): boolean;
  /** The database's clock in Unix milliseconds: leases are measured by it, not by any one process's clock. */
  now(db: Kysely<Database>): Promise<number>;
  /**
   * True when a write transaction excludes every other writer until it ends
   * (SQLite's BEGIN IMMEDIATE): what it read stays current, so nothing needs
   * locking or reading again.
   */
  readonly exclusiveWrites: boolean;
  /**
   * The least time (ms) from the start of a dispatcher's last claim to a claim
   * a wake-up asks for. Every worker wakes on every NOTIFY (each API process
   * sends at most one per 2 ms) and a claim costs several round trips
   * (PostgreSQL): a stream of commits costs each worker at most one such claim
   * per interval. In-process claims (SQLite) cost a fraction of a millisecond
   * and are not held back.
   */
  readonly wakeupSpacingMs: number;
  /** Adds FOR UPDATE SKIP LOCKED where the database has row locks (PostgreSQL); SQLite's writer lock already serialises. */
  lockSkipLocked<DB, TB extends keyof DB, O>(query: SelectQueryBuilder<DB, TB, O>): SelectQueryBuilder<DB, TB, O>;
  /** Adds FOR UPDATE where the database has row locks: read-modify-write of one row inside a transaction. */
  lockRows<DB, TB extends keyof DB, O>(query: SelectQueryBuilder<DB, TB, O>): SelectQueryBuilder<DB, TB, O>;
  /** Commits, log fsyncs and checkpoints so far, where carehooks does those itself (SQLite). */
  storageStats?(): StorageStats;
  /**
   * The embedded database's state shared with connections on other threads
   * of this process (`DialectOptions.shared`): commits counted and flushed
   * together, write transactions in turn. Absent for in-memory databases.
   */
  readonly shared?: SqliteShared;
  /** Opens the channel that wakes dispatchers after commits (LISTEN/NOTIFY, or in-process). */
  createWakeup(): Wakeup;
  /**
   * Tells every process which rows it may have cached have changed
   * (PostgreSQL: a NOTIFY channel of its own, heard on the LISTEN
   * connection; SQLite: the commits of other connections, counted by SQLite
   * itself, drop every cache). Absent where nothing may be cached.
   */
  readonly changes?: ChangeFeed;
  /**
   * True when one statement can insert into several tables (a data-modifying
   * WITH, PostgreSQL): a record, its event and its deliveries are then one
   * round trip and their own transaction.
   */
  readonly writableCtes: boolean;
  /** True for text the database cannot store (a NUL byte in PostgreSQL): the caller's input, so a 400. */
  isInvalidText(error: unknown): boolean;
  /** True for a unique-constraint violation. */
  isUniqueViolation(error: unknown): boolean;
  /**
   * True when the database rolled a transaction back to break a deadlock or a
   * serialization failure (PostgreSQL's 40P01 and 40001):
   * nothing of it is left, and running it again is the database's own advice
   * (store/aborts.ts). Never on SQLite, whose writers take turns.
   */
  isTransientAbort(error: unknown): boolean;
  close(): Promise<void>;
}

/** Names of what changed, as `client:<id>` or `subs:<business id>`: see store/changes.ts. */
export interface ChangeFeed {
  /** In `db`'s transaction: every process hears of the changes when it commits, and not if it rolls back. */
  announce(db: Kysely<Database>, keys: readonly string[]): Promise<void>;
  /** Passes changes to this process's watchers now (after the commit), before the notification comes back. */
  deliverLocally(keys: readonly string[]): void;
  /** Calls `changed` for every change any process announces, and `reset` when some may have been missed. */
  watch(watcher: ChangeWatcher): () => void;
  /** performance.now() before which every change committed has been heard here; minus infinity while deaf. */
  heardUntil(): number;
}

export interface ChangeWatcher {
  changed(key: string): void;
  reset(): void;
}

/** Creates written together when DialectOptions does not say (CAREHOOKS_CREATE_BATCH's default). */
export const DEFAULT_CREATE_BATCH = 64;

export interface DialectOptions {
  readonly sqliteSynchronous: "FULL" | "NORMAL";
  /**
   * SQLite: how long a write waits for a lock another process holds (the
   * wait blocks the thread); past it the write fails as unavailable. Default
   * 5 s; migrations always wait at least that.
   */
  readonly sqliteBusyTimeoutMs?: number;
  readonly poolSize: number;
  /** Called once when the storage can no longer promise durability (a failed fsync): the process should stop. */
  readonly onStorageFailure?: (error: Error) => void;
  /**
   * SQLite: `auto` lets the COMMIT that fills the log copy it back (SQLite's
   * default); `background` leaves that to a thread of its own, started by
   * the first connection (without `shared`), so no serving thread waits for
   * a checkpoint. Default `auto`.
   */
  readonly sqliteCheckpoints?: "auto" | "background";
  /**
   * SQLite with carehooks flushing the log: false for the dispatcher thread's
   * connection: its statements wait for the other connections' commits, not
   * for its own (heartbeats, breaker changes, returned leases), which go to
   * disk in the background; losing one to a power cut only sends a delivery
   * again. Default true: statements wait for every commit, except that the
   * queue transactions (`queueTransaction`: the claims and outcomes the main
   * thread runs for the dispatcher) do not wait for their own commits.
   */
  readonly sqliteWaitForOwnCommits?: boolean;
  /**
   * PostgreSQL: commit without waiting for the server's log flush
   * (`synchronous_commit=off`), for a worker process, whose writes are leases
   * and outcomes: a database crash can lose the last fraction of a second of
   * them, which only sends those deliveries again. Never for a process that
   * writes events. Default false.
   */
  readonly postgresAsynchronousCommits?: boolean;
  /**
   * The most creates written together (store/outbox-batch.ts,
   * CAREHOOKS_CREATE_BATCH, whose default config/settings.ts gives); 1 writes
   * each on its own. Default DEFAULT_CREATE_BATCH.
   */
  readonly createBatch?: number;
  /** Another connection's `shared` (SQLite, same file): count, flush and write in turn with it. */
  readonly shared?: SqliteShared;
  /**
   * PostgreSQL: the LISTEN connection is checked every half of this (ms), so
   * a process knows whether it has heard every change committed this long
   * ago (CAREHOOKS_CACHE_STALENESS). Default 1000.
   */
  readonly cacheStalenessMs?: number;
}

/** The embedded database's log, where carehooks flushes (FULL) or checkpoints (serve) it itself. */
export interface StorageStats {
  /** Commits and log fsyncs since start, when carehooks flushes the log. */
  readonly commits?: number;
  readonly flushes?: number;
  /** Background checkpoints that found pages to copy, and the pages in the log at the last one. */
  readonly checkpoints?: number;
  readonly logFrames?: number;
  /** Background checkpoints that copied the whole log back: the next commit starts it over. */
  readonly logRestarts?: number;
}

/** What the connections of one process to one SQLite file share, one connection per thread. */
export interface SqliteShared {
  /** The write-ahead log's commit and flush counters (WalFlusher), where carehooks flushes it (FULL). */
  readonly wal?: SharedArrayBuffer;
  /** Turns at writing (WriteTurns). */
  readonly writeTurns: SharedArrayBuffer;
  /**
   * How long every thread's writes wait for another process's lock, and when
   * they may try again (BusyGate): a thread stuck in that wait holds the
   * write turn, so the others would queue behind it.
   */
  readonly busy?: { readonly timeoutMs: number; readonly gate: SharedArrayBuffer };
}
