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
 *   row that a power loss could still take back.
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
import fs from "node:fs";
import path from "node:path";
import type BetterSqlite3 from "better-sqlite3";
import { type CompiledQuery, type DatabaseConnection, type Driver, type QueryResult, SqliteDialect } from "kysely";

/** Slots of a flusher's shared counters. */
const COMMITTED = 0;
const FLUSHED = 1;
const FLUSHES = 2;
const FAILED = 3;
/** Commits started: one ahead of COMMITTED while a COMMIT runs (commits take turns, so at most one). */
const COMMITTING = 4;
/** Flushers made so far for this log: each takes the next writer number. */
const WRITERS = 5;
/** Per writer, the number (in COMMITTING's count) of the last commit it started. */
const LAST_COMMIT = 6;
const MAX_WRITERS = 8;
const SLOTS = LAST_COMMIT + MAX_WRITERS;

export interface WalFlusherOptions {
  /**
   * Wait for this connection's own commits before answering (default true).
   * False for the dispatcher's connection: what it writes (leases, outcomes)
   * is flushed in the background, since losing it to a power cut only means a
   * delivery is sent again; it still waits for every other connection's
   * commits, so it never sends an event that is not on disk.
   */
  readonly waitForOwnCommits?: boolean;
}

/**
 * Flushes the write-ahead log, many commits per fsync.
 *
 * Its counters live in shared memory, so connections on other threads of the
 * process (the dispatcher's) can share them: a flush of the log file makes
 * every commit written before it durable, whichever connection wrote it, and
 * a read on one thread waits for commits counted on any of them.
 */
export class WalFlusher {
  readonly #path: string;
  readonly #onFailure: ((error: Error) => void) | undefined;
  readonly #shared: BigInt64Array;
  #fd: number | undefined;
  #flushing = false;
  #failure: Error | undefined;
  #waiters: { upTo: bigint; resolve(): void; reject(error: Error): void }[] = [];

  readonly #writer: number;
  readonly #waitForOwnCommits: boolean;

  /** `shared`: another flusher's `sharedState` for the same log, to count with it. */
  constructor(
    walPath: string,
    onFailure?: (error: Error) => void,
    shared?: SharedArrayBuffer,
    options: WalFlusherOptions = {},
  ) {
    this.#path = path.resolve(walPath);
    this.#onFailure = onFailure;
    this.#shared = new BigInt64Array(shared ?? new SharedArrayBuffer(SLOTS * BigInt64Array.BYTES_PER_ELEMENT));
    this.#writer = Number(Atomics.add(this.#shared, WRITERS, 1n));
    if (this.#writer >= MAX_WRITERS) throw new Error(`at most ${MAX_WRITERS} connections share a SQLite log`);
    this.#waitForOwnCommits = options.waitForOwnCommits ?? true;
  }

  /** The counters to give a flusher on another thread. */
  get sharedState(): SharedArrayBuffer {
    return this.#shared.buffer as SharedArrayBuffer;
  }

  /**
   * A commit (a COMMIT, or a write outside a transaction) is about to run:
   * from now on another thread may read what it writes, so a read there waits
   * for it. Always followed by `committed()`, whether it succeeded or not.
   */
  committing(): void {
    const number = Atomics.add(this.#shared, COMMITTING, 1n) + 1n;
    Atomics.store(this.#shared, LAST_COMMIT + this.#writer, number);
  }

  /** That commit has run: its log frames are written, so a flush starting now covers them. */
  committed(): void {
    Atomics.add(this.#shared, COMMITTED, 1n);
  }

  /**
   * Resolves once every commit started so far, on any thread, is on disk; or,
   * for a flusher that does not wait for its own commits (and unless
   * `everything`), every other connection's, its own being flushed meanwhile.
   */
  durable(everything = false): Promise<void> {
    try {
      this.check();
    } catch (error) {
      return Promise.reject(error);
    }
    // One running on another thread now may already be visible here.
    const all = Atomics.load(this.#shared, COMMITTING);
    const upTo = everything || this.#waitForOwnCommits ? all : this.#othersCommitted();
    const flushed = Atomics.load(this.#shared, FLUSHED);
    if (flushed >= upTo) {
      // Its own commits go to disk without anyone waiting for them.
      if (flushed < all) this.#waiters.push({ upTo: all, resolve: () => {}, reject: () => {} });
      this.#flush();
      return Promise.resolve();
    }
    return new Promise((resolve, reject) => {
      this.#waiters.push({ upTo, resolve, reject });
      this.#flush();
    });
  }

  /** The number of the last commit any other connection started. */
  #othersCommitted(): bigint {
    let last = 0n;
    for (let writer = 0; writer < MAX_WRITERS; writer++) {
      if (writer === this.#writer) continue;
      const number = Atomics.load(this.#shared, LAST_COMMIT + writer);
      if (number > last) last = number;
    }
    return last;
  }

  /** Commits counted, commits known to be on disk, and fsyncs done (on every thread sharing the counters). */
  get stats(): { committed: number; flushed: number; flushes: number } {
    return {
      committed: Number(Atomics.load(this.#shared, COMMITTED)),
      flushed: Number(Atomics.load(this.#shared, FLUSHED)),
      flushes: Number(Atomics.load(this.#shared, FLUSHES)),
    };
  }

  /** Throws the flush failure that stopped this database, here or on another thread, if any. */
  check(): void {
    if (this.#failure) throw this.#failure;
    if (Atomics.load(this.#shared, FAILED) !== 0n) {
      this.#failure = failureOf(new Error("a flush on another thread failed"));
      throw this.#failure;
    }
  }

  close(): void {
    if (this.#fd !== undefined) fs.closeSync(this.#fd);
    this.#fd = undefined;
  }

  #flush(): void {
    if (this.#flushing || this.#waiters.length === 0) return;
    this.#flushing = true;
    const upTo = Atomics.load(this.#shared, COMMITTED);
    // What is waited for is still being written by a COMMIT on another thread: flush once it has run.
    if (upTo <= Atomics.load(this.#shared, FLUSHED)) {
      setTimeout(() => {
        this.#flushing = false;
        this.#settle();
        this.#flush();
      }, 1);
      return;
    }
    let fd: number;
    try {
      if (this.#fd === undefined) {
        this.#fd = fs.openSync(this.#path, "r");
        // SQLite made the log at the first write: its directory entry must survive a power loss too.
        syncDirectory(path.dirname(this.#path));
      }
      fd = this.#fd;
    } catch (error) {
      this.#fail(error as Error);
      return;
    }
    fs.fsync(fd, (error) => {
      this.#flushing = false;
      if (error) {
        this.#fail(error);
        return;
      }
      // Pages a failed flush dropped are not rewritten by this one: nothing is promised after a failure anywhere.
      if (Atomics.load(this.#shared, FAILED) !== 0n) {
        this.#fail(new Error("a flush on another thread failed"));
        return;
      }
      Atomics.add(this.#shared, FLUSHES, 1n);
      // Another thread's flush may have covered more meanwhile: the mark only moves forward.
      for (let seen = Atomics.load(this.#shared, FLUSHED); seen < upTo; ) {
        const was = Atomics.compareExchange(this.#shared, FLUSHED, seen, upTo);
        if (was === seen) break;
        seen = was;
      }
      this.#settle();
      this.#flush();
    });
  }

  /** Resolves the waiters whose commits are on disk, by this thread's flush or another's. */
  #settle(): void {
    const flushed = Atomics.load(this.#shared, FLUSHED);
    const waiting = this.#waiters;
    this.#waiters = [];
    for (const waiter of waiting) {
      if (waiter.upTo <= flushed) waiter.resolve();
      else this.#waiters.push(waiter);
    }
  }

  #fail(error: Error): void {
    this.#flushing = false;
    this.#failure = failureOf(error);
    Atomics.store(this.#shared, FAILED, 1n);
    const waiting = this.#waiters;
    this.#waiters = [];
    for (const waiter of waiting) waiter.reject(this.#failure);
    this.#onFailure?.(this.#failure);
  }
}

function failureOf(error: Error): Error {
  const failure = new Error(`flushing the SQLite write-ahead log failed: ${error.message}`, { cause: error });
  (failure as Error & { code?: string }).code = "SQLITE_IOERR_FSYNC";
  return failure;
}

/**
 * Turns at writing between the connections of one process (one per thread),
 * taken in arrival order. SQLite lets one writer in at a time and makes the
 * others sleep and retry (its busy handler), which blocks their threads for
 * up to milliseconds; waiting here instead is asynchronous, so the waiting
 * thread goes on with everything but its database work (its one connection
 * waits with the transaction: HTTP, sending and signing go on). Other
 * processes still meet at SQLite's lock, with its busy timeout.
 */
export class WriteTurns {
  /** [next ticket, ticket being served]; equality only, so wrapping around is harmless. */
  readonly #turns: Int32Array;

  constructor(shared?: SharedArrayBuffer) {
    this.#turns = new Int32Array(shared ?? new SharedArrayBuffer(2 * Int32Array.BYTES_PER_ELEMENT));
  }

  get sharedState(): SharedArrayBuffer {
    return this.#turns.buffer as SharedArrayBuffer;
  }

  /** Resolves when it is this caller's turn; every take must be followed by one `done`. */
  async take(): Promise<void> {
    const mine = Atomics.add(this.#turns, 0, 1);
    for (;;) {
      const serving = Atomics.load(this.#turns, 1);
      if (serving === mine) return;
      const wait = Atomics.waitAsync(this.#turns, 1, serving);
      if (!wait.async) continue;
      // A pending waitAsync does not keep the event loop alive: a thread must not exit holding a ticket.
      const keepAlive = setInterval(() => {}, 60_000);
      try {
        await wait.value;
      } finally {
        clearInterval(keepAlive);
      }
    }
  }

  done(): void {
    Atomics.add(this.#turns, 1, 1);
    Atomics.notify(this.#turns, 1);
  }
}

/** Makes the entries of a directory (a new file in it) durable. */
export function syncDirectory(directory: string): void {
  const fd = fs.openSync(directory, "r");
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** How large and how old (ms) a shared transaction may grow: the other thread waits for the write turn meanwhile. */
export interface SharedLimits {
  readonly members: number;
  readonly ms: number;
}

const SHARED_LIMITS: SharedLimits = { members: 100, ms: 10 };

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
 *   transaction of a later turn: a shared transaction lasts one turn.
 * - A member that would find it full or old (`SharedLimits`: 100, 10 ms)
 *   commits it first and starts the next one; so does one that lets go of
 *   an old one.
 * - Each member is answered only after that COMMIT and the flush that covers
 *   it; if either fails, every member fails, as none of them is committed.
 * - A statement outside a transaction in the meantime runs inside it, and is
 *   answered after it too: it may have read what the members wrote.
 */
class SharedTransaction {
  readonly openedAt = performance.now();
  members = 1;
  /** A member wrote something: its COMMIT is a commit to flush. */
  wrote = false;
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

function lostTransaction(cause?: unknown): Error {
  return new Error("the shared SQLite transaction was rolled back: no member of it is committed", { cause });
}

/**
 * One turn with the single connection. A transaction keeps it until its
 * commit or rollback (its savepoint's, or the BEGIN it made); a statement
 * outside a transaction keeps it for that statement only.
 */
class Lease implements DatabaseConnection {
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
  constructor(driver: DurableSqliteDriver) {
    this.#driver = driver;
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

  constructor(db: BetterSqlite3.Database, wal: WalFlusher | undefined, turns?: WriteTurns, limits = SHARED_LIMITS) {
    this.#db = db;
    this.#limits = limits;
    this.#wal = wal;
    this.#turns = turns;
  }

  async init(): Promise<void> {}

  async acquireConnection(): Promise<DatabaseConnection> {
    if (this.#held) await new Promise<void>((resolve) => this.#queue.push(resolve));
    else this.#held = true;
    return new Lease(this);
  }

  async releaseConnection(connection: DatabaseConnection): Promise<void> {
    this.#release(connection as Lease);
  }

  async beginTransaction(connection: DatabaseConnection): Promise<void> {
    const lease = connection as Lease;
    this.#check();
    const open = this.#shared;
    // This lease holds the connection, so no member is running: a full or old one can commit now.
    if (open && (open.members >= this.#limits.members || this.#isOld(open))) {
      this.#commitShared(open);
    } else if (open && !this.#db.inTransaction) {
      // SQLite rolled it back under a member that went on regardless: it is lost, and this one starts afresh.
      this.#end(open, lostTransaction());
    } else if (open) {
      this.#db.prepare("savepoint member").run();
      open.members++;
      lease.shared = open;
      lease.savepoint = true;
      lease.inTransaction = true;
      return;
    }
    // A BEGIN that fails still ends with the lease's release, and the turn with it.
    await this.#takeTurn(lease);
    // IMMEDIATE takes the write lock at BEGIN, so two writers never deadlock upgrading from a read.
    this.#db.prepare("begin immediate").run();
    const shared = new SharedTransaction();
    // The turn is the shared transaction's now: it ends with its COMMIT, not with this lease.
    lease.writing = false;
    this.#shared = shared;
    lease.shared = shared;
    lease.inTransaction = true;
    setImmediate(() => this.#close(shared));
  }

  async commitTransaction(connection: DatabaseConnection): Promise<void> {
    const lease = connection as Lease;
    const shared = lease.shared as SharedTransaction;
    this.#assertOpen(shared);
    if (lease.savepoint) this.#db.prepare("release member").run();
    lease.inTransaction = false;
    await this.#finish(lease, shared);
  }

  async rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    const lease = connection as Lease;
    lease.inTransaction = false;
    // Released: it committed and only the shared COMMIT or its flush failed.
    if (lease.released) return;
    const shared = lease.shared;
    if (shared && this.#shared === shared) {
      if (!this.#db.inTransaction) {
        // Some errors (disk full, I/O) roll the whole transaction back, members that committed into it too.
        this.#end(shared, lostTransaction());
      } else if (lease.savepoint) {
        try {
          this.#db.prepare("rollback to member").run();
          this.#db.prepare("release member").run();
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
    await this.#finish(lease, this.#shared);
  }

  async destroy(): Promise<void> {
    const open = this.#shared;
    // A member still running has not committed: closing takes the whole transaction back, as closing SQLite would.
    if (open && this.#held) this.#abandon(open, new Error("the database was closed during the transaction"));
    else if (open) this.#commitShared(open);
    await this.#wal?.durable(true).catch(() => undefined);
    this.#wal?.close();
    this.#db.close();
  }

  async execute<R>(lease: Lease, query: CompiledQuery): Promise<QueryResult<R>> {
    if (lease.released) throw new Error("a SQLite lease outside a transaction serves one statement");
    let result: QueryResult<R>;
    // Outside a transaction while a shared one is open, a statement runs inside that one.
    const shared = lease.inTransaction ? lease.shared : this.#shared;
    try {
      this.#check();
      if (shared) this.#assertOpen(shared);
      const statement = this.#db.prepare(query.sql);
      const parameters = query.parameters as unknown[];
      // A write with RETURNING is a reader too: `readonly` is what tells a write.
      const writes = !statement.readonly;
      // A write outside a transaction is a transaction, and a commit, of its own: it takes a turn too.
      const ownCommit = writes && !lease.inTransaction && !shared;
      if (ownCommit) await this.#takeTurn(lease);
      const run = (): QueryResult<R> => {
        if (statement.reader) return { rows: statement.all(parameters) as R[] };
        const { changes, lastInsertRowid } = statement.run(parameters);
        return { numAffectedRows: BigInt(changes), insertId: BigInt(lastInsertRowid), rows: [] };
      };
      result = ownCommit ? this.#commit(true, run) : run();
      if (writes) lease.wrote = true;
      if (writes && shared) shared.wrote = true;
    } catch (error) {
      // Some errors (disk full, I/O) roll the whole shared transaction back: no later statement may run outside it.
      if (shared && !this.#db.inTransaction) this.#end(shared, lostTransaction(error));
      if (lease.inTransaction) throw error;
      // Its error may rest on what the shared transaction wrote (a duplicate key): answered once that is committed.
      await this.#finish(lease, shared === this.#shared ? shared : undefined);
      throw error;
    }
    if (!lease.inTransaction) await this.#finish(lease, shared);
    return result;
  }

  /** Runs a commit (when it wrote something), counted as started before and as run after, whatever its outcome. */
  #commit<T>(wrote: boolean, run: () => T): T {
    const wal = wrote ? this.#wal : undefined;
    wal?.committing();
    try {
      return run();
    } finally {
      wal?.committed();
    }
  }

  /**
   * Frees the connection (and the lease's write turn, if it holds one rather
   * than a shared transaction), so the next statement runs while
   * the disk works, then waits until every commit so far, this lease's own
   * included, is on disk. Also after reading only: what it read may not be.
   * `shared`: the shared transaction it wrote into or read from, committed first.
   */
  async #finish(lease: Lease, shared: SharedTransaction | undefined): Promise<void> {
    this.#release(lease);
    if (shared) await shared.settled;
    await this.#wal?.durable();
  }

  /** The end of a turn of the event loop: commit the shared transaction once no member holds the connection. */
  #close(shared: SharedTransaction): void {
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
      this.#commit(shared.wrote, () => this.#db.prepare("commit").run());
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
    if (error) shared.reject(error);
    else shared.resolve();
  }

  async #takeTurn(lease: Lease): Promise<void> {
    if (!this.#turns) return;
    await this.#turns.take();
    lease.writing = true;
  }

  #isOld(shared: SharedTransaction): boolean {
    return performance.now() - shared.openedAt >= this.#limits.ms;
  }

  #endTurn(lease: Lease): void {
    if (!lease.writing) return;
    lease.writing = false;
    this.#turns?.done();
  }

  #release(lease: Lease): void {
    // Whatever ended the lease (COMMIT, ROLLBACK, an error in either), a turn it holds itself ends with it.
    this.#endTurn(lease);
    if (lease.released) return;
    lease.released = true;
    // The turn of the event loop ended while this lease held the connection, or the shared transaction is old:
    // it is committed before the next lease, so the write lock is never held long for work between statements.
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
  readonly #wal: WalFlusher | undefined;
  readonly #turns: WriteTurns | undefined;
  readonly #limits: SharedLimits | undefined;
  constructor(
    database: BetterSqlite3.Database,
    wal: WalFlusher | undefined,
    turns?: WriteTurns,
    limits?: SharedLimits,
  ) {
    super({ database });
    this.#database = database;
    this.#wal = wal;
    this.#turns = turns;
    this.#limits = limits;
  }
  override createDriver(): Driver {
    return new DurableSqliteDriver(this.#database, this.#wal, this.#turns, this.#limits);
  }
}
