/**
 * Flushes SQLite's write-ahead log itself, with fsync on libuv's thread pool,
 * many commits per fsync (group commit), for the durable driver
 * (sqlite-durable.ts). Its counters live in shared memory, so connections on
 * other threads of the process share them.
 */
import fs from "node:fs";
import path from "node:path";

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
   * False for the dispatcher thread's own connection: what it writes
   * (heartbeats, breaker changes, returned leases, operational events) is
   * flushed in the background, within BACKGROUND_FLUSH_MS: a power cut losing
   * the last of it loses nothing an event or its answer depends on (README,
   * "Running in production", says what each loss means). It still waits for
   * every other connection's commits, so it never acts on what is not on disk.
   */
  readonly waitForOwnCommits?: boolean;
  /**
   * Some commits of this connection are relaxed (`committing(true)`): the
   * dispatcher's claims and outcomes that the main thread's connection runs
   * for it (sqlite-durable.ts, Checkout.relaxed). They are counted apart, waited
   * for by the connection's other statements but not by relaxed ones
   * (`durable({ relaxed: true })`), and flushed in the background like the
   * thread's own.
   */
  readonly relaxedCommits?: boolean;
}

/**
 * The longest a commit nobody waits for stays off the disk (ms), unless a
 * later commit that somebody waits for takes it along sooner. One fsync per
 * interval at most, where a flush per claim or outcome batch cost a drain up
 * to a sixth of its CPU while the disk was slow (docs/benchmarks-history.md); the
 * background checkpoint, which flushes the log first, often comes sooner.
 */
export const BACKGROUND_FLUSH_MS = 100;

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
  /** Called when this thread's flush in progress ends, before the next one starts. */
  #afterFlush: (() => void)[] = [];
  /** The background flush of this connection's own commits, when one is due. */
  #later: NodeJS.Timeout | undefined;

  readonly #writer: number;
  /** The number that counts this connection's relaxed commits, if it makes any. */
  readonly #relaxedWriter: number | undefined;
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
    this.#writer = this.#newWriter();
    this.#relaxedWriter = options.relaxedCommits ? this.#newWriter() : undefined;
    this.#waitForOwnCommits = options.waitForOwnCommits ?? true;
  }

  #newWriter(): number {
    const writer = Number(Atomics.add(this.#shared, WRITERS, 1n));
    if (writer >= MAX_WRITERS) throw new Error(`at most ${MAX_WRITERS} writers share a SQLite log`);
    return writer;
  }

  /** Whether `committing(true)` counts commits apart (WalFlusherOptions.relaxedCommits). */
  get relaxesCommits(): boolean {
    return this.#relaxedWriter !== undefined;
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
  committing(relaxed = false): void {
    const number = Atomics.add(this.#shared, COMMITTING, 1n) + 1n;
    const writer = relaxed ? (this.#relaxedWriter ?? this.#writer) : this.#writer;
    Atomics.store(this.#shared, LAST_COMMIT + writer, number);
  }

  /** That commit has run: its log frames are written, so a flush starting now covers them. */
  committed(): void {
    Atomics.add(this.#shared, COMMITTED, 1n);
  }

  /**
   * Resolves once every commit started so far, on any thread, is on disk; or,
   * unless `everything`, for a flusher that does not wait for its own commits,
   * every other connection's, and for a `relaxed` statement, every commit but
   * the relaxed ones; those go to disk within BACKGROUND_FLUSH_MS.
   */
  durable({ everything = false, relaxed = false }: { everything?: boolean; relaxed?: boolean } = {}): Promise<void> {
    try {
      this.check();
    } catch (error) {
      return Promise.reject(error);
    }
    // One running on another thread now may already be visible here.
    const all = Atomics.load(this.#shared, COMMITTING);
    const unwaited = everything ? undefined : this.#unwaitedWriter(relaxed);
    const upTo = unwaited === undefined ? all : this.#lastCommitBut(unwaited);
    const flushed = Atomics.load(this.#shared, FLUSHED);
    // Its own commits go to disk without anyone waiting for them: a flush already running when it
    // began need not cover them.
    if (upTo < all && flushed < all) this.#flushLater();
    if (flushed >= upTo) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.#waiters.push({ upTo, resolve, reject });
      this.#flush();
    });
  }

  /** Whether this connection's statements wait for its own commits to be on disk (WalFlusherOptions). */
  get waitsForOwnCommits(): boolean {
    return this.#waitForOwnCommits;
  }

  /** True while a flush started on this thread runs: a commit made now waits for the one after it. */
  get flushing(): boolean {
    return this.#flushing;
  }

  /**
   * Calls `then` once this thread's flush in progress has ended (or failed), before the next one
   * starts, so that a commit made then is covered by that next flush; at once when none runs.
   */
  afterFlush(then: () => void): void {
    if (this.#flushing) this.#afterFlush.push(then);
    else then();
  }

  /** The writer whose commits a statement does not wait for: its relaxed ones, or (WalFlusherOptions.waitForOwnCommits) its own. */
  #unwaitedWriter(relaxed: boolean): number | undefined {
    if (relaxed && this.#relaxedWriter !== undefined) return this.#relaxedWriter;
    if (this.#waitForOwnCommits) return undefined;
    return this.#writer;
  }

  /** Flushes every commit so far within BACKGROUND_FLUSH_MS, nobody waiting for it. */
  #flushLater(): void {
    if (this.#later !== undefined) return;
    this.#later = setTimeout(() => {
      this.#later = undefined;
      // A failure anywhere has been reported; and a flush since may have covered everything.
      if (this.#failure || Atomics.load(this.#shared, FAILED) !== 0n) return;
      if (Atomics.load(this.#shared, FLUSHED) >= Atomics.load(this.#shared, COMMITTING)) return;
      this.#waiters.push({ upTo: Atomics.load(this.#shared, COMMITTING), resolve: () => {}, reject: () => {} });
      this.#flush();
    }, BACKGROUND_FLUSH_MS);
    // A process that exits first has closed its connections, and closing flushes everything (sqlite-durable.ts).
    this.#later.unref();
  }

  /** The number of the last commit any writer but `unwaited` started. */
  #lastCommitBut(unwaited: number): bigint {
    let last = 0n;
    for (let writer = 0; writer < MAX_WRITERS; writer++) {
      if (writer === unwaited) continue;
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
    clearTimeout(this.#later);
    this.#later = undefined;
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
        this.#flushEnded();
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
      this.#flushEnded();
      this.#flush();
    });
  }

  #flushEnded(): void {
    const callbacks = this.#afterFlush;
    this.#afterFlush = [];
    for (const then of callbacks) {
      try {
        then();
      } catch (error) {
        // Not at the cost of the other callbacks, nor of the next flush: thrown on its own.
        queueMicrotask(() => {
          throw error;
        });
      }
    }
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
    this.#flushEnded();
    this.#onFailure?.(this.#failure);
  }
}

function failureOf(error: Error): Error {
  const failure = new Error(`flushing the SQLite write-ahead log failed: ${error.message}`, { cause: error });
  (failure as Error & { code?: string }).code = "SQLITE_IOERR_FSYNC";
  return failure;
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
