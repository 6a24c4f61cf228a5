/**
 * Fails writes fast while another process holds SQLite's write lock (a
 * `BEGIN EXCLUSIVE` from a tool, a backup). better-sqlite3 waits for the
 * lock inside the call, blocking the event loop: at the 5 s busy timeout every
 * queued request would wait its 5 s in turn, `/healthz` included, and writes
 * whose clients had given up would commit later. Instead a write waits a
 * short busy timeout, and once one has found the lock taken, the writes in
 * the next HOLD_MS fail at once without touching SQLite (the API answers 503
 * with Retry-After); the first after it tries again. A write inside a
 * transaction never meets a closed gate: the gate closes only when a write
 * failed to take the lock, so no transaction is open on the connection then.
 */
import type BetterSqlite3 from "better-sqlite3";

/** How long after a write found the lock taken the next ones fail without trying. */
const HOLD_MS = 1000;

/** Shaped like better-sqlite3's own, so `isUnavailable` and the 503 mapping treat both alike. */
export class SqliteBusyError extends Error {
  override name = "SqliteError";
  readonly code = "SQLITE_BUSY";
}

function isBusy(error: unknown): boolean {
  const code = (error as { code?: unknown })?.code;
  return typeof code === "string" && code.startsWith("SQLITE_BUSY");
}

/**
 * Shared by the threads of a process (a SharedArrayBuffer holding the time,
 * in epoch ms, until which writes fail without trying): when the dispatcher
 * thread finds the lock taken, the API's writes stop trying too.
 */
export class BusyGate {
  readonly #closedUntil: Float64Array;

  constructor(shared?: SharedArrayBuffer) {
    this.#closedUntil = new Float64Array(shared ?? new SharedArrayBuffer(Float64Array.BYTES_PER_ELEMENT));
  }

  get sharedState(): SharedArrayBuffer {
    return this.#closedUntil.buffer as SharedArrayBuffer;
  }

  /** True while writes fail without trying: the last one found the lock taken. */
  get locked(): boolean {
    // A plain read is enough: a stale value only lets one more write try, or fail, a moment early.
    return Date.now() < (this.#closedUntil[0] as number);
  }

  /**
   * A statement that takes the write lock (BEGIN IMMEDIATE, or a write run on
   * its own), failing at once while the gate is closed and closing it when
   * the lock is taken. Reads, COMMIT and ROLLBACK pass untouched: SQLite
   * counts transaction control as read-only, and a rollback must never fail.
   */
  guard(statement: BetterSqlite3.Statement, isBegin: boolean): BetterSqlite3.Statement {
    if (!isBegin && statement.readonly) return statement;
    const guarded = (method: "run" | "get" | "all") => {
      const call = statement[method].bind(statement) as (...args: unknown[]) => unknown;
      return (...args: unknown[]) => {
        if (this.locked) throw new SqliteBusyError("database is locked by another process");
        try {
          return call(...args);
        } catch (error) {
          if (isBusy(error)) this.#closedUntil[0] = Date.now() + HOLD_MS;
          throw error;
        }
      };
    };
    const methods = { run: guarded("run"), get: guarded("get"), all: guarded("all") };
    return new Proxy(statement, {
      get: (target, property, receiver) =>
        property === "run" || property === "get" || property === "all"
          ? methods[property]
          : Reflect.get(target, property, receiver),
    });
  }
}
