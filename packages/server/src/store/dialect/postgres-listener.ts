/**
 * The one LISTEN connection of a process: wake-ups and cache changes arrive
 * on it. It is opened by the first handler, reopened when lost, and checked
 * with a heartbeat, so the process knows up to when it has heard every
 * notification committed (`heardUntil`): a connection that died without a
 * word (a NAT or firewall dropping it) delivers nothing and says nothing.
 */
import { performance } from "node:perf_hooks";
import pg from "pg";

const RECONNECT_MS = 1000;

export interface ListenerOptions {
  readonly connectionString: string;
  readonly types: pg.CustomTypesConfig;
  /** Every channel this process listens on; LISTENed at each (re)connect. */
  readonly channels: readonly string[];
  /** How often the connection is checked with a query (ms). */
  readonly heartbeatMs: number;
  /** A heartbeat unanswered for this long means the connection is dead: it is closed and reopened (ms). */
  readonly deadAfterMs: number;
}

type Handler = (payload: string) => void;

export class PgListener {
  readonly #options: ListenerOptions;
  readonly #handlers = new Map<string, Set<Handler>>();
  readonly #reconnected = new Set<() => void>();
  #client: pg.Client | undefined;
  #started = false;
  #closed = false;
  #heartbeat: NodeJS.Timeout | undefined;
  /** performance.now() when the outstanding heartbeat was sent. */
  #pingSentAt: number | undefined;
  #heardUntil = Number.NEGATIVE_INFINITY;

  constructor(options: ListenerOptions) {
    this.#options = options;
  }

  /**
   * performance.now() up to which every notification committed has reached
   * this process: the send time of the last heartbeat (or LISTEN) answered.
   * Minus infinity while the connection is down.
   */
  heardUntil(): number {
    return this.#heardUntil;
  }

  /** Calls `handler` with each notification's payload on `channel` (one of the options' channels). */
  on(channel: string, handler: Handler): () => void {
    if (!this.#options.channels.includes(channel)) throw new Error(`not a channel of this listener: ${channel}`);
    const handlers = this.#handlers.get(channel) ?? new Set();
    handlers.add(handler);
    this.#handlers.set(channel, handlers);
    this.#start();
    return () => handlers.delete(handler);
  }

  /** Calls `handler` after each (re)connect: what was sent meanwhile was missed. */
  onReconnect(handler: () => void): () => void {
    this.#reconnected.add(handler);
    this.#start();
    return () => this.#reconnected.delete(handler);
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#heartbeat);
    this.#heardUntil = Number.NEGATIVE_INFINITY;
    await this.#client?.end().catch(() => {});
  }

  #start(): void {
    if (this.#started || this.#closed) return;
    this.#started = true;
    void this.#connect();
    this.#heartbeat = setInterval(() => this.#beat(), this.#options.heartbeatMs);
    this.#heartbeat.unref();
  }

  async #connect(): Promise<void> {
    if (this.#closed) return;
    const next = new pg.Client({
      connectionString: this.#options.connectionString,
      types: this.#options.types,
      // Which process's listener, for operators (and tests) looking at pg_stat_activity.
      application_name: `carehooks listen ${process.pid}`,
    });
    next.on("notification", (message) => {
      for (const handler of this.#handlers.get(message.channel) ?? []) handler(message.payload ?? "");
    });
    next.on("error", () => {});
    let listenedAt: number;
    try {
      await next.connect();
      listenedAt = performance.now();
      await next.query(this.#options.channels.map((channel) => `LISTEN ${channel};`).join(" "));
    } catch {
      await next.end().catch(() => {});
      this.#reconnectLater();
      return;
    }
    if (this.#closed) {
      await next.end().catch(() => {});
      return;
    }
    this.#client = next;
    this.#pingSentAt = undefined;
    this.#heardUntil = listenedAt;
    next.on("end", () => this.#lost(next));
    for (const handler of this.#reconnected) handler();
  }

  #lost(client: pg.Client): void {
    if (this.#client !== client) return;
    this.#client = undefined;
    this.#heardUntil = Number.NEGATIVE_INFINITY;
    this.#reconnectLater();
  }

  #reconnectLater(): void {
    if (!this.#closed) setTimeout(() => void this.#connect(), RECONNECT_MS).unref();
  }

  #beat(): void {
    const client = this.#client;
    if (!client) return;
    const now = performance.now();
    if (this.#pingSentAt !== undefined) {
      // Still waiting: a connection that answers nothing for this long is not coming back.
      if (now - this.#pingSentAt > this.#options.deadAfterMs) {
        this.#lost(client);
        void client.end().catch(() => {});
      }
      return;
    }
    const sentAt = now;
    this.#pingSentAt = sentAt;
    client.query("SELECT 1").then(
      () => {
        if (this.#client !== client) return;
        this.#pingSentAt = undefined;
        this.#heardUntil = sentAt;
      },
      () => {},
    );
  }
}
