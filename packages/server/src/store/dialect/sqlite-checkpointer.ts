/**
 * Checkpoints of the embedded database's write-ahead log, on a thread of their own.
 *
 * SQLite copies the log back into the database file (a checkpoint) inside
 * the COMMIT that takes the log past 1 000 pages: about every 50 creates
 * here, and each copy with its two fsyncs held that thread for 15–25 ms,
 * while it still held the write turn the other thread was waiting for. With
 * `background` checkpoints the serving connections never checkpoint
 * (`wal_autocheckpoint = 0`); this thread, with its own connection, runs a
 * PASSIVE checkpoint every CHECKPOINT_EVERY_MS, which neither waits for nor
 * blocks readers and writers. Durability is unchanged: a checkpoint only
 * copies committed pages, and SQLite syncs the database file before the log
 * is reused.
 *
 * SQLite starts the log over (writes its frames from the file's start
 * again) only at a write that finds every frame copied back, and under a
 * steady stream of commits a PASSIVE checkpoint never finds that: it copies
 * what is committed, while a write transaction is nearly always open and
 * appends its frames when it commits. The log then grew without end, 370 MB in
 * 16 000 creates, and every commit extended the file: the kernel allocated
 * and zeroed new blocks and journalled the new size, a fifth of the API
 * thread's time. So once the log passes FINISH_AT_FRAMES, the checkpoint
 * is followed by another in a write turn (sqlite-write-turns.ts: no write
 * transaction of this process is open meanwhile), which copies the frames
 * committed during the first and syncs both files: under heavy load the
 * process's writes wait 15–25 ms for it, once every 150–200 ms. The next
 * commit starts the log over, in blocks the file already has (unless a
 * read is using the log at that moment: then the next finish tries again).
 */
import { isMainThread, parentPort, Worker, workerData } from "node:worker_threads";
import BetterSqlite3 from "better-sqlite3";
import { threadError } from "../../thread-error.js";
import { WriteTurns } from "./sqlite-write-turns.js";

const CHECKPOINT_EVERY_MS = 100;
/** SQLite's own automatic checkpoint size: a log this long is copied back whole, and then starts over. */
const FINISH_AT_FRAMES = 1000;

interface CheckpointerData {
  readonly role: "sqlite-checkpointer";
  readonly file: string;
  /** [checkpoints that found pages to copy, pages in the log at the last one, whole logs copied back in a write turn] */
  readonly counters: SharedArrayBuffer;
  /** The write turns of the process's connections, taken to copy the last frames back. */
  readonly writeTurns: SharedArrayBuffer;
}

type FromCheckpointer = { type: "failed"; message: string; code?: string };

export class Checkpointer {
  readonly #worker: Worker;
  readonly #exited: Promise<void>;
  readonly #counters = new BigInt64Array(new SharedArrayBuffer(3 * BigInt64Array.BYTES_PER_ELEMENT));

  /**
   * `writeTurns`: the shared state of the process's write turns, taken to finish a long log.
   * `onFailure`: a checkpoint could not write the database file (the disk failed): nothing more can be promised.
   */
  constructor(file: string, writeTurns: SharedArrayBuffer, onFailure?: (error: Error) => void) {
    const data: CheckpointerData = {
      role: "sqlite-checkpointer",
      file,
      counters: this.#counters.buffer as SharedArrayBuffer,
      writeTurns,
    };
    this.#worker = new Worker(new URL(import.meta.url), { workerData: data, name: "carehooks-checkpointer" });
    this.#worker.on("message", (message: FromCheckpointer) => {
      const error = Object.assign(new Error(`checkpointing the SQLite log failed: ${message.message}`), {
        code: message.code,
      });
      onFailure?.(error);
    });
    this.#worker.on("error", (error) => onFailure?.(threadError(error, "the SQLite checkpoint thread")));
    this.#exited = new Promise((resolve) => this.#worker.once("exit", () => resolve()));
    // Its timer alone does not keep the process alive.
    this.#worker.unref();
  }

  /** Checkpoints that found pages to copy, the pages in the log at the last one, and the times the log was copied back whole to start over. */
  get stats(): { checkpoints: number; logFrames: number; logRestarts: number } {
    return {
      checkpoints: Number(Atomics.load(this.#counters, 0)),
      logFrames: Number(Atomics.load(this.#counters, 1)),
      logRestarts: Number(Atomics.load(this.#counters, 2)),
    };
  }

  /** Runs a last checkpoint and closes its connection; resolves when the thread is gone. */
  stop(): Promise<void> {
    // Waited for, it must keep the process alive: an unref'd thread would let it end here, unfinished.
    this.#worker.ref();
    this.#worker.postMessage("stop");
    return this.#exited;
  }
}

/** The thread's side: its own connection, a PASSIVE checkpoint on a timer, finished in a write turn when the log is long. */
function runCheckpoints({ file, counters: shared, writeTurns }: CheckpointerData): void {
  const port = parentPort;
  if (!port) return;
  const report = (error: unknown): void => {
    const { message, code } = error as Error & { code?: string };
    port.postMessage({
      type: "failed",
      message: String(message),
      ...(code ? { code } : {}),
    } satisfies FromCheckpointer);
  };
  let db: BetterSqlite3.Database;
  try {
    db = new BetterSqlite3(file);
    // Its checkpoints sync the log before copying and the database file after.
    db.pragma("synchronous = NORMAL");
  } catch (error) {
    // Said as a checkpoint's failure would be: a worker's uncaught SqliteError reaches the main thread without its message.
    report(error);
    port.close();
    return;
  }
  const counters = new BigInt64Array(shared);
  const turns = new WriteTurns(writeTurns);
  let last = { log: 0, checkpointed: 0 };
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  /** A checkpoint failed: reported once, and nothing more is tried, not even at stop. */
  let failed = false;
  /** One PASSIVE checkpoint; false once one failed (the failure is reported and nothing more is tried). */
  const checkpoint = (): boolean => {
    try {
      const [result] = db.pragma("wal_checkpoint(PASSIVE)") as { log: number; checkpointed: number }[];
      if (!result) return true;
      // Nothing written since the last one: the same log, already copied back.
      const copied = result.checkpointed > 0 && (result.log !== last.log || result.checkpointed !== last.checkpointed);
      if (copied) Atomics.add(counters, 0, 1n);
      Atomics.store(counters, 1, BigInt(result.log));
      last = result;
      return true;
    } catch (error) {
      stopped = true;
      failed = true;
      report(error);
      return false;
    }
  };
  /** The log's length when it was last copied back whole in a write turn: idle since, it needs no other turn. */
  let finishedAt = -1;
  /** Copies the frames committed since the last checkpoint while no write transaction of this process is open. */
  const finish = async (): Promise<void> => {
    await turns.take();
    try {
      // All of it copied with nobody writing: the next commit starts the log over.
      if (!stopped && checkpoint() && last.checkpointed === last.log) {
        finishedAt = last.log;
        Atomics.add(counters, 2, 1n);
      }
    } finally {
      turns.done();
    }
  };
  const round = async (): Promise<void> => {
    if (checkpoint() && last.log >= FINISH_AT_FRAMES && last.log !== finishedAt) await finish();
    if (!stopped) timer = setTimeout(round, CHECKPOINT_EVERY_MS);
  };
  timer = setTimeout(round, CHECKPOINT_EVERY_MS);
  port.on("message", () => {
    stopped = true;
    clearTimeout(timer);
    if (!failed) checkpoint();
    try {
      db.close();
    } catch (error) {
      // Reported once: after a failed checkpoint, closing says nothing new.
      if (!failed) report(error);
    }
    // With nothing left to listen to, the thread exits: what `stop` waits for.
    port.close();
  });
}

if (!isMainThread && (workerData as Partial<CheckpointerData> | null)?.role === "sqlite-checkpointer") {
  runCheckpoints(workerData as CheckpointerData);
}
