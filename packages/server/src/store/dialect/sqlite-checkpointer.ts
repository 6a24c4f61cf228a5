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
 */
import { isMainThread, parentPort, Worker, workerData } from "node:worker_threads";
import BetterSqlite3 from "better-sqlite3";

const CHECKPOINT_EVERY_MS = 100;

interface CheckpointerData {
  readonly role: "sqlite-checkpointer";
  readonly file: string;
  /** [checkpoints that found pages to copy, pages in the log at the last one] */
  readonly counters: SharedArrayBuffer;
}

type FromCheckpointer = { type: "failed"; message: string; code?: string };

export class Checkpointer {
  readonly #worker: Worker;
  readonly #exited: Promise<void>;
  readonly #counters = new BigInt64Array(new SharedArrayBuffer(2 * BigInt64Array.BYTES_PER_ELEMENT));

  /** `onFailure`: a checkpoint could not write the database file (the disk failed): nothing more can be promised. */
  constructor(file: string, onFailure?: (error: Error) => void) {
    const data: CheckpointerData = {
      role: "sqlite-checkpointer",
      file,
      counters: this.#counters.buffer as SharedArrayBuffer,
    };
    this.#worker = new Worker(new URL(import.meta.url), { workerData: data, name: "carehooks-checkpointer" });
    this.#worker.on("message", (message: FromCheckpointer) => {
      const error = Object.assign(new Error(`checkpointing the SQLite log failed: ${message.message}`), {
        code: message.code,
      });
      onFailure?.(error);
    });
    this.#worker.on("error", (error) => onFailure?.(error));
    this.#exited = new Promise((resolve) => this.#worker.once("exit", () => resolve()));
    // Its timer alone does not keep the process alive.
    this.#worker.unref();
  }

  /** Checkpoints that found pages to copy, and the pages in the log at the last one. */
  get stats(): { checkpoints: number; logFrames: number } {
    return { checkpoints: Number(Atomics.load(this.#counters, 0)), logFrames: Number(Atomics.load(this.#counters, 1)) };
  }

  /** Runs a last checkpoint and closes its connection; resolves when the thread is gone. */
  stop(): Promise<void> {
    // Waited for, it must keep the process alive: an unref'd thread would let it end here, unfinished.
    this.#worker.ref();
    this.#worker.postMessage("stop");
    return this.#exited;
  }
}

/** The thread's side: its own connection, a PASSIVE checkpoint on a timer. */
function runCheckpoints({ file, counters: shared }: CheckpointerData): void {
  const port = parentPort;
  if (!port) return;
  const db = new BetterSqlite3(file);
  // Its checkpoints sync the log before copying and the database file after.
  db.pragma("synchronous = NORMAL");
  const counters = new BigInt64Array(shared);
  let last = { log: 0, checkpointed: 0 };
  const checkpoint = () => {
    try {
      const [result] = db.pragma("wal_checkpoint(PASSIVE)") as { log: number; checkpointed: number }[];
      if (!result) return;
      // Nothing written since the last one: the same log, already copied back.
      const copied = result.checkpointed > 0 && (result.log !== last.log || result.checkpointed !== last.checkpointed);
      if (copied) Atomics.add(counters, 0, 1n);
      Atomics.store(counters, 1, BigInt(result.log));
      last = result;
    } catch (error) {
      clearInterval(timer);
      const { message, code } = error as Error & { code?: string };
      port.postMessage({ type: "failed", message, ...(code ? { code } : {}) } satisfies FromCheckpointer);
    }
  };
  const timer = setInterval(checkpoint, CHECKPOINT_EVERY_MS);
  port.on("message", () => {
    clearInterval(timer);
    checkpoint();
    db.close();
    // With nothing left to listen to, the thread exits: what `stop` waits for.
    port.close();
  });
}

if (!isMainThread && (workerData as Partial<CheckpointerData> | null)?.role === "sqlite-checkpointer") {
  runCheckpoints(workerData as CheckpointerData);
}
