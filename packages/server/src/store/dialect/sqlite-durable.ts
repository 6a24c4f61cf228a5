/**
 * Durable commits for the embedded database without blocking the event loop.
 *
 * better-sqlite3 runs on the main thread, so with `synchronous=FULL` every
 * COMMIT stopped the whole process for an fsync (about 0.4 ms here): the
 * largest single cost of an event. Instead, SQLite runs with
 * `synchronous=NORMAL` (the WAL is written at COMMIT but not flushed) and this
 * driver flushes the WAL itself, with `fsync` on libuv's thread pool:
 *
 * - Every COMMIT, and every write outside a transaction while none is
 *   open, counts as one commit. A flush covers every commit made before it started; commits that
 *   arrive while one runs share the next flush (group commit).
 * - No result leaves the driver before every commit made so far is on disk:
 *   a write is answered only once it is durable, and a read cannot show a
 *   row that a power loss could still take back. The exception is the
 *   dispatcher's own writes, which nobody is answered on: claims and outcomes
 *   (`transaction(true, …)` on the main thread's connection) and what the
 *   dispatcher thread writes on its own connection (heartbeats and the like,
 *   `sqliteWaitForOwnCommits: false`). They go to disk in the background
 *   within BACKGROUND_FLUSH_MS or with the next commit somebody waits for; what
 *   they read of the other writers is on disk, what they read of their own may
 *   not be yet.
 * - The connection is free again as soon as SQLite has returned, so the
 *   next transaction runs while the flush is in progress.
 * - Write transactions of one turn of the event loop share one SQLite
 *   transaction and one COMMIT (`SharedTransaction`): most of a commit's
 *   cost is writing the pages it changed to the log, and consecutive
 *   creates change the same pages.
 * - A failed flush leaves the durability of what was written unknown, so
 *   every later statement fails with that error, and `serve` exits so its
 *   supervisor restarts it (PostgreSQL stops for the same reason).
 *
 * That is `synchronous=FULL`'s guarantee (a committed and answered change
 * survives power loss) with the fsyncs shared. With `SQLITE_SYNCHRONOUS=NORMAL`
 * nothing is flushed here: changes survive a crash of the process, not of the
 * machine.
 */
import type BetterSqlite3 from "better-sqlite3";
import { type CompiledQuery, type DatabaseConnection, type Driver, type QueryResult, SqliteDialect } from "kysely";
import type { Parameters, SqlStatements } from "./adapter.js";
import { lostTransaction, SHARED_LIMITS, type SharedLimits, SharedTransaction } from "./sqlite-shared-transaction.js";
import type { WalFlusher } from "./sqlite-wal-flusher.js";
import type { WriteTurns } from "./sqlite-write-turns.js";

export type { SharedLimits };

/** What the durable driver works with besides its connection. */
export interface DurableOptions {
  /** Flushes the log for `synchronous=FULL`; absent when commits need no flush here (`NORMAL`, in memory). */
  readonly wal?: WalFlusher | undefined;
  /** Turns at writing shared with the connections on other threads (none for an in-memory database). */
  readonly turns?: WriteTurns | undefined;
  /** How large and old a shared transaction may grow (SHARED_LIMITS unless given). */
  readonly limits?: SharedLimits | undefined;
  /** Writes were rolled back that other statements on this connection may have read (the caches' reset). */
  readonly onRolledBack?: (() => void) | undefined;
}

/**
 * One turn with the single connection. A transaction keeps it until its
 * commit or rollback (its savepoint's, or the BEGIN it made); a statement
 * outside a transaction keeps it for that statement only.
 */
class Checkout implements DatabaseConnection {
  /**
   * Its own commits need not be on disk before it is answered, only what it read: a power cut
   * losing them costs a repeat, never an event or an answer (the dispatcher's claims and outcomes,
   * the only relaxed checkouts: `transaction(true, …)`'s).
   */
  readonly relaxed: boolean;
  inTransaction = false;
  /** It holds the process's write turn (a BEGIN, or one write statement): a shared transaction takes it over. */
  writing = false;
  /** A statement of it changed something. */
  wrote = false;
  released = false;
  /** The shared transaction its transaction runs in; `savepoint` when it joined one already open. */
  shared: SharedTransaction | undefined;
  savepoint = false;
  readonly #driver: DurableSqliteDriver;
  constructor(driver: DurableSqliteDriver, relaxed: boolean) {
    this.#driver = driver;
    this.relaxed = relaxed;
  }
  executeQuery<R>(query: CompiledQuery): Promise<QueryResult<R>> {
    return this.#driver.execute<R>(this, query);
  }
  // biome-ignore lint/correctness/useYield: the interface asks for streaming, which carehooks does not use on SQLite.
  async *streamQuery<R>(): AsyncIterableIterator<QueryResult<R>> {
    throw new Error("streaming queries are not supported on SQLite");
  }
}

/** Kysely's SQLite driver contract: one connection, taken in turn, write transactions `BEGIN IMMEDIATE` and shared. */
export class DurableSqliteDriver implements Driver {
  readonly #db: BetterSqlite3.Database;
  /** Undefined when commits need no flush here (`NORMAL`, or an in-memory database). */
  readonly #wal: WalFlusher | undefined;
  /** Turns at writing shared with the connections on other threads (none for an in-memory database). */
  readonly #turns: WriteTurns | undefined;
  readonly #queue: (() => void)[] = [];
  #held = false;
  /** The open shared transaction: it holds the write turn until its COMMIT. */
  #shared: SharedTransaction | undefined;
  /** A transaction that could be neither committed nor rolled back: nothing more is safe on this connection. */
  #broken: Error | undefined;

  readonly #limits: SharedLimits;
  /** Writes were rolled back that other statements on this connection may have read (the caches' reset). */
  readonly #onRolledBack: (() => void) | undefined;

  constructor(db: BetterSqlite3.Database, options: DurableOptions = {}) {
    this.#db = db;
    this.#limits = options.limits ?? SHARED_LIMITS;
    this.#wal = options.wal;
    this.#turns = options.turns;
    this.#onRolledBack = options.onRolledBack;
  }

  async init(): Promise<void> {}

  acquireConnection(): Promise<DatabaseConnection> {
    return this.#acquire(false);
  }

  async #acquire(relaxed: boolean): Promise<DatabaseConnection> {
    if (this.#held) await new Promise<void>((resolve) => this.#queue.push(resolve));
    else this.#held = true;
    return new Checkout(this, relaxed);
  }

  async releaseConnection(connection: DatabaseConnection): Promise<void> {
    this.#release(connection as Checkout);
  }

  async beginTransaction(connection: DatabaseConnection): Promise<void> {
    const checkout = connection as Checkout;
    this.#check();
    const open = this.#shared;
    // This checkout holds the connection, so no member is running: a full or old one can commit now.
    if (open && (open.members >= this.#limits.members || this.#isOld(open))) {
      this.#commitShared(open);
    } else if (open && !this.#db.inTransaction) {
      // SQLite rolled it back under a member that went on regardless: it is lost, and this one starts afresh.
      this.#end(open, lostTransaction());
    } else if (open) {
      this.#db.prepare("savepoint member").run();
      open.members++;
      checkout.shared = open;
      checkout.savepoint = true;
      checkout.inTransaction = true;
      return;
    }
    // A BEGIN that fails still ends with the checkout's release, and the turn with it.
    await this.#takeTurn(checkout);
    // IMMEDIATE takes the write lock at BEGIN, so two writers never deadlock upgrading from a read.
    this.#db.prepare("begin immediate").run();
    const shared = new SharedTransaction();
    // The turn is the shared transaction's now: it ends with its COMMIT, not with this checkout.
    checkout.writing = false;
    this.#shared = shared;
    checkout.shared = shared;
    checkout.inTransaction = true;
    setImmediate(() => this.#close(shared));
  }

  async commitTransaction(connection: DatabaseConnection): Promise<void> {
    const checkout = connection as Checkout;
    const shared = checkout.shared as SharedTransaction;
    this.#assertOpen(shared);
    if (checkout.savepoint) this.#db.prepare("release member").run();
    checkout.inTransaction = false;
    await this.#finish(checkout, shared);
  }

  async rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    const checkout = connection as Checkout;
    checkout.inTransaction = false;
    // Released: it committed and only the shared COMMIT or its flush failed.
    if (checkout.released) return;
    const shared = checkout.shared;
    if (shared && this.#shared === shared) {
      if (!this.#db.inTransaction) {
        // Some errors (disk full, I/O) roll the whole transaction back, members that committed into it too.
        this.#end(shared, lostTransaction());
      } else if (checkout.savepoint) {
        try {
          this.#db.prepare("rollback to member").run();
          this.#db.prepare("release member").run();
          if (checkout.wrote) this.#onRolledBack?.();
        } catch (error) {
          // Its writes cannot be taken out alone, and must not be committed with the others.
          this.#abandon(shared, error as Error);
        }
      } else {
        // The first member: nobody has joined yet (it held the connection), so the whole transaction goes.
        this.#abandon(shared, lostTransaction());
      }
    }
    // Its error may rest on rows it read (a 409 for a state another commit made): those must be on disk first.
    await this.#finish(checkout, this.#shared);
  }

  async destroy(): Promise<void> {
    const open = this.#shared;
    // A member still running has not committed: closing takes the whole transaction back, as closing SQLite would.
    if (open && this.#held) this.#abandon(open, new Error("the database was closed during the transaction"));
    else if (open) this.#commitShared(open);
    await this.#wal?.durable({ everything: true }).catch(() => undefined);
    this.#wal?.close();
    this.#db.close();
  }

  async execute<R>(checkout: Checkout, query: CompiledQuery): Promise<QueryResult<R>> {
    if (checkout.released) throw new Error("a SQLite checkout outside a transaction serves one statement");
    let result: QueryResult<R>;
    // Outside a transaction while a shared one is open, a statement runs inside that one.
    const shared = checkout.inTransaction ? checkout.shared : this.#shared;
    try {
      this.#check();
      if (shared) this.#assertOpen(shared);
      const statement = this.#db.prepare(query.sql);
      const parameters = query.parameters as unknown[];
      // A write with RETURNING is a reader too: `readonly` is what tells a write.
      const writes = !statement.readonly;
      // A write outside a transaction is a transaction, and a commit, of its own: it takes a turn too.
      const ownCommit = writes && !checkout.inTransaction && !shared;
      if (ownCommit) await this.#takeTurn(checkout);
      const run = (): QueryResult<R> => {
        if (statement.reader) return { rows: statement.all(parameters) as R[] };
        const { changes, lastInsertRowid } = statement.run(parameters);
        return { numAffectedRows: BigInt(changes), insertId: BigInt(lastInsertRowid), rows: [] };
      };
      result = ownCommit ? this.#commit(true, run, checkout.relaxed) : run();
      if (writes) this.#wrote(checkout, shared);
    } catch (error) {
      // Some errors (disk full, I/O) roll the whole shared transaction back: no later statement may run outside it.
      if (shared && !this.#db.inTransaction) this.#end(shared, lostTransaction(error));
      if (checkout.inTransaction) throw error;
      // Its error may rest on what the shared transaction wrote (a duplicate key): answered once that is committed.
      await this.#finish(checkout, shared === this.#shared ? shared : undefined);
      throw error;
    }
    if (!checkout.inTransaction) await this.#finish(checkout, shared);
    return result;
  }

  /**
   * Runs `work` as one transaction of its own checkout, its statements straight on the connection:
   * the delivery queue's claims and outcomes (relaxed) and the outbox's batches of creates
   * (strict), each once per batch on the hottest paths there are, where the query layer's promises
   * and wrappers cost more than the transaction control around them. Turns,
   * shared transactions and durability are a Kysely transaction's on this driver, except that a
   * `relaxed` one is answered before its own commit is on disk (`Checkout.relaxed`), once every
   * commit before it that a strict checkout or another connection wrote is; a shared transaction a
   * strict checkout wrote into is strict, whoever began it. Relaxed only where the flusher counts
   * relaxed commits apart (WalFlusherOptions.relaxedCommits; sqlite.ts asks for it only there). `work` runs
   * synchronously, as better-sqlite3 does: one that returns a promise is refused (its statements
   * after an await would run in whatever transaction is open then).
   */
  async transaction<T>(relaxed: boolean, work: (sql: SqlStatements) => T): Promise<T> {
    const checkout = (await this.#acquire(relaxed)) as Checkout;
    try {
      await this.beginTransaction(checkout);
      let result: T;
      try {
        result = work({
          all: <R>(text: string, parameters: Parameters) => this.#statement(checkout, text, parameters, true) as R[],
          run: (text, parameters) => this.#statement(checkout, text, parameters, false) as number,
        });
        const then = (result as { then?: unknown } | null)?.then;
        if (typeof then === "function") {
          // Refused whatever it settles to; a rejection later is not left unhandled.
          then.call(result, undefined, () => {});
          throw new TypeError("a SQLite transaction's work must be synchronous");
        }
        await this.commitTransaction(checkout);
      } catch (error) {
        await this.rollbackTransaction(checkout);
        throw error;
      }
      return result;
    } finally {
      await this.releaseConnection(checkout);
    }
  }

  /**
   * One statement of a checkout's open transaction (`execute`'s path inside one, without the query
   * layer): its rows, or with `rows` false the number of rows it changed.
   */
  #statement(checkout: Checkout, text: string, parameters: Parameters, rows: boolean): unknown[] | number {
    if (checkout.released || !checkout.inTransaction) {
      throw new Error("a SQLite transaction's statements run inside its work, not after it");
    }
    const shared = checkout.shared as SharedTransaction;
    try {
      this.#check();
      this.#assertOpen(shared);
      const statement = this.#db.prepare(text);
      if (statement.reader !== rows) {
        throw new TypeError(rows ? `no rows to read, run it: ${text}` : `it returns rows, read them: ${text}`);
      }
      const result = rows ? statement.all(parameters) : statement.run(parameters).changes;
      if (!statement.readonly) this.#wrote(checkout, shared);
      return result;
    } catch (error) {
      // Some errors (disk full, I/O) roll the whole shared transaction back: no later statement may run outside it.
      if (!this.#db.inTransaction) this.#end(shared, lostTransaction(error));
      throw error;
    }
  }

  /** A statement of `checkout` changed something, inside `shared` when given. */
  #wrote(checkout: Checkout, shared: SharedTransaction | undefined): void {
    checkout.wrote = true;
    if (!shared) return;
    shared.wrote = true;
    if (!checkout.relaxed) shared.strict = true;
  }

  /**
   * Runs a commit (when it wrote something), counted as started before and as run after, whatever
   * its outcome; counted as relaxed when only relaxed checkouts wrote in it.
   */
  #commit<T>(wrote: boolean, run: () => T, relaxed: boolean): T {
    const wal = wrote ? this.#wal : undefined;
    wal?.committing(relaxed);
    try {
      return run();
    } finally {
      wal?.committed();
    }
  }

  /**
   * Frees the connection (and the checkout's write turn, if it holds one rather
   * than a shared transaction), so the next statement runs while
   * the disk works, then waits until every commit so far is on disk, this
   * checkout's own included unless it is relaxed (then its own go to disk in the
   * background). Also after reading only: what it read may not be.
   * `shared`: the shared transaction it wrote into or read from, committed first.
   */
  async #finish(checkout: Checkout, shared: SharedTransaction | undefined): Promise<void> {
    this.#release(checkout);
    if (shared) await shared.settled;
    await this.#wal?.durable({ relaxed: checkout.relaxed });
  }

  /**
   * The end of a turn of the event loop: commit the shared transaction once no member holds the
   * connection. While this thread's flush runs, a COMMIT now would wait for the flush after it
   * anyway (where members wait for their own commits: not on the dispatcher thread's
   * connection): a transaction that wrote stays open until that flush ends, or until its age
   * limit, and the transactions of the turns meanwhile join it, so one COMMIT writes the pages
   * they all changed.
   */
  #close(shared: SharedTransaction): void {
    const wal = this.#wal;
    const age = performance.now() - shared.openedAt;
    const worthWaiting =
      wal?.flushing && wal.waitsForOwnCommits && shared.strict && shared.members < this.#limits.members;
    if (this.#shared === shared && worthWaiting && age < this.#limits.ms) {
      // A slow disk must not keep it open past its age limit: the other thread waits for the write turn.
      const old = setTimeout(() => this.#commitWhenFree(shared), this.#limits.ms - age);
      wal.afterFlush(() => {
        clearTimeout(old);
        this.#commitWhenFree(shared);
      });
      return;
    }
    this.#commitWhenFree(shared);
  }

  /** Commits the shared transaction now, or as soon as the member holding the connection lets go. */
  #commitWhenFree(shared: SharedTransaction): void {
    if (this.#shared !== shared) return;
    if (this.#held) shared.closeWhenFree = true;
    else this.#commitShared(shared);
  }

  /** Throws once nothing more is safe on this connection: a flush failed, or a transaction could not be ended. */
  #check(): void {
    this.#wal?.check();
    if (this.#broken) throw this.#broken;
  }

  /** Throws when `shared` is over, or SQLite has rolled it back under a member that went on regardless. */
  #assertOpen(shared: SharedTransaction): void {
    if (this.#shared !== shared) throw shared.failure ?? lostTransaction();
    if (this.#db.inTransaction) return;
    const lost = lostTransaction();
    this.#end(shared, lost);
    throw lost;
  }

  #commitShared(shared: SharedTransaction): void {
    try {
      this.#commit(shared.wrote, () => this.#db.prepare("commit").run(), !shared.strict);
    } catch (error) {
      this.#abandon(shared, error as Error);
      return;
    }
    this.#end(shared);
  }

  /** Rolls the shared transaction back whole; its members fail with `error`. Never throws. */
  #abandon(shared: SharedTransaction, error: Error): void {
    try {
      if (this.#db.inTransaction) this.#db.prepare("rollback").run();
    } catch (rollbackError) {
      // Still open and holding SQLite's write lock: every later statement fails rather than run inside it.
      this.#broken = new Error(`a SQLite transaction could be neither committed nor rolled back: ${rollbackError}`, {
        cause: rollbackError,
      });
    }
    this.#end(shared, error);
  }

  /** The shared transaction is over, committed or (with `error`) not: its members are answered, its turn ends. */
  #end(shared: SharedTransaction, error?: Error): void {
    if (this.#shared !== shared) return;
    this.#shared = undefined;
    shared.failure = error;
    this.#turns?.done();
    if (error) {
      // Its members' writes are gone, though statements of the transaction may have read them.
      if (shared.wrote) this.#onRolledBack?.();
      shared.reject(error);
    } else shared.resolve();
  }

  async #takeTurn(checkout: Checkout): Promise<void> {
    if (!this.#turns) return;
    await this.#turns.take();
    checkout.writing = true;
  }

  #isOld(shared: SharedTransaction): boolean {
    return performance.now() - shared.openedAt >= this.#limits.ms;
  }

  #endTurn(checkout: Checkout): void {
    if (!checkout.writing) return;
    checkout.writing = false;
    this.#turns?.done();
  }

  #release(checkout: Checkout): void {
    // Whatever ended the checkout (COMMIT, ROLLBACK, an error in either), a turn it holds itself ends with it.
    this.#endTurn(checkout);
    if (checkout.released) return;
    checkout.released = true;
    // The turn of the event loop ended while this checkout held the connection, or the shared transaction is old:
    // it is committed before the next checkout, so the write lock is never held long for work between statements.
    const open = this.#shared;
    if (open && (open.closeWhenFree || this.#isOld(open))) this.#commitShared(open); // never throws
    const next = this.#queue.shift();
    if (next) next();
    else this.#held = false;
  }
}

/** Kysely's SQLite dialect on this driver. */
export class DurableSqliteDialect extends SqliteDialect {
  readonly #database: BetterSqlite3.Database;
  readonly #options: DurableOptions;
  #driver: DurableSqliteDriver | undefined;
  constructor(database: BetterSqlite3.Database, options: DurableOptions = {}) {
    super({ database });
    this.#database = database;
    this.#options = options;
  }
  override createDriver(): DurableSqliteDriver {
    this.#driver ??= new DurableSqliteDriver(this.#database, this.#options);
    return this.#driver;
  }
}
