/**
 * Wakes idle dispatchers when a commit created deliveries. Payload-less and
 * coalesced: many commits in a burst cost one signal per process. In one
 * process (SQLite) the signal is an in-process event; with PostgreSQL it is a
 * NOTIFY that every worker LISTENs for on one dedicated connection.
 */
import { EventEmitter } from "node:events";

export interface Wakeup {
  /** Call after a commit that created or re-queued deliveries. */
  notify(): void;
  /** Registers a listener; returns the function that removes it. */
  subscribe(listener: () => void): () => void;
  close(): Promise<void>;
}

/** Coalesces notify() calls and fans the signal out to local listeners. */
export class LocalWakeup implements Wakeup {
  readonly #events = new EventEmitter();
  #pending = false;

  constructor(
    /** Sends the signal to other processes too (PostgreSQL); absent for SQLite. */
    private readonly broadcast?: () => void,
    private readonly coalesceMs = 2,
  ) {
    this.#events.setMaxListeners(0);
  }

  notify(): void {
    if (this.#pending) return;
    this.#pending = true;
    setTimeout(() => {
      this.#pending = false;
      this.broadcast?.();
      this.#events.emit("wake");
    }, this.coalesceMs).unref();
  }

  /** A signal that arrived from elsewhere (a NOTIFY, a reconnect). */
  deliver(): void {
    this.#events.emit("wake");
  }

  subscribe(listener: () => void): () => void {
    this.#events.on("wake", listener);
    return () => this.#events.off("wake", listener);
  }

  async close(): Promise<void> {
    this.#events.removeAllListeners();
  }
}
