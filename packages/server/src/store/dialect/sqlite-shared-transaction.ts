/**
 * The group commit of the durable SQLite driver (sqlite-durable.ts): the write
 * transactions of one turn of a thread's event loop share one SQLite
 * transaction, each a savepoint, and one COMMIT and fsync; none is answered
 * before that COMMIT is on disk.
 */

/** How large and how old (ms) a shared transaction may grow: the other thread waits for the write turn meanwhile. */
export interface SharedLimits {
  readonly members: number;
  readonly ms: number;
}

export const SHARED_LIMITS: SharedLimits = { members: 100, ms: 10 };

/**
 * Write transactions that run in the same turn of the event loop share one
 * SQLite transaction. SQLite writes every page a transaction changed to the
 * log at COMMIT: a create changes about 15 (three rows, their indexes), and
 * the next create changes the same pages again. Committed together, they
 * write them once.
 *
 * - The first transaction of a turn takes the write turn and BEGINs; the ones
 *   after it, each in turn on the connection, run as savepoints inside it, so
 *   one that fails is rolled back alone.
 * - The COMMIT runs once no transaction holds the connection, at the end of
 *   the turn (`setImmediate`), and before the connection goes to a
 *   transaction of a later turn: a shared transaction lasts one turn. But
 *   when the turn ends while this thread's flush runs, a COMMIT then would
 *   wait for the flush after it anyway: one that wrote, on a connection
 *   that waits for its own commits, stays open until that flush ends (or
 *   its age limit), and the transactions of the turns meanwhile join it.
 * - A member that would find it full or old (`SharedLimits`: 100, 10 ms)
 *   commits it first and starts the next one; so does one that lets go of
 *   an old one.
 * - Each member is answered only after that COMMIT and the flush that covers
 *   it; if either fails, every member fails, as none of them is committed.
 * - A statement outside a transaction in the meantime runs inside it, and is
 *   answered after it too: it may have read what the members wrote.
 */
export class SharedTransaction {
  readonly openedAt = performance.now();
  members = 1;
  /** A member wrote something: its COMMIT is a commit to flush. */
  wrote = false;
  /** A strict member (not a relaxed one: sqlite-durable.ts) wrote something: somebody waits for its flush. */
  strict = false;
  /** The end of the turn came while a member held the connection: commit when it lets go. */
  closeWhenFree = false;
  /** Why it ended without committing. */
  failure: Error | undefined;
  readonly settled: Promise<void>;
  resolve!: () => void;
  reject!: (error: Error) => void;
  constructor() {
    this.settled = new Promise<void>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
    // Nobody may be waiting (a transaction alone that rolled back): a failure is not unhandled.
    this.settled.catch(() => undefined);
  }
}

/**
 * What each member of a lost shared transaction fails with. SQLite's own code for a statement
 * aborted by its transaction's rollback: a member lost through another's failure did nothing
 * wrong and may be tried again, so `isUnavailable` counts it (503 for the API, a retry of the
 * whole batch for a completion write, never a split).
 */
export function lostTransaction(cause?: unknown): Error {
  return Object.assign(
    new Error("the shared SQLite transaction was rolled back: no member of it is committed", { cause }),
    { code: "SQLITE_ABORT_ROLLBACK" },
  );
}
