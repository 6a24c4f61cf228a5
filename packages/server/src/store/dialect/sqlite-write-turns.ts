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
