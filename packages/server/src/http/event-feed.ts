/**
 * One tail of the event table per process, fanned out to every open
 * `/stream`: however many streams are open, the database sees one scan per
 * wake-up or poll (of the businesses that have a stream), and one query every
 * CLIENT_CHECK_MS for their clients' revocations.
 *
 * Commits can land out of id order, so each scan re-reads a trailing window
 * and de-duplicates instead of trusting "greater than the last id". A feed
 * that starts again, or a business that gets its first stream, re-reads the
 * window: each stream de-duplicates what it sent as well.
 */
import type { FastifyBaseLogger } from "fastify";
import { revokedAmong } from "../store/api-clients.js";
import { type EventRow, eventsSince } from "../store/events.js";
import type { Db } from "../store/open.js";
import type { Wakeup } from "../store/wakeup.js";
import { RecentIds } from "./recent-ids.js";

/** How far back each scan looks, to catch commits that landed late. */
export const TRAILING_WINDOW_MS = 5000;
export const SCAN_LIMIT = 1000;
/** How often open streams' clients are checked for revocation and their tokens for expiry. */
const CLIENT_CHECK_MS = 1000;

export interface FeedSubscriber {
  readonly businessId: string;
  readonly clientId: string;
  /** When the token that opened it expires (ms); the stream ends then. */
  readonly expiresAt: number | undefined;
  /** Takes a new event; must not wait (a slow reader is the subscriber's problem, not the feed's). */
  deliver(row: EventRow): void;
  /** Ends the stream, saying why. */
  end(reason: string): void;
}

export class EventFeed {
  readonly #byBusiness = new Map<string, Set<FeedSubscriber>>();
  readonly #perClient = new Map<string, number>();
  #size = 0;
  /** Ids already fanned out that are still inside the trailing window. */
  readonly #seen = new RecentIds(2 * TRAILING_WINDOW_MS);
  #cursor = 0;
  #scanning = false;
  #again = false;
  #stopTimers: (() => void) | undefined;

  constructor(
    private readonly db: Db,
    private readonly wakeup: Wakeup,
    private readonly pollMs: number,
    private readonly log: FastifyBaseLogger,
  ) {}

  get size(): number {
    return this.#size;
  }

  streamsOf(clientId: string): number {
    return this.#perClient.get(clientId) ?? 0;
  }

  /** Adds a subscriber; the returned function removes it. */
  add(subscriber: FeedSubscriber): () => void {
    if (this.#size === 0) this.#start();
    let set = this.#byBusiness.get(subscriber.businessId);
    if (!set) {
      set = new Set();
      this.#byBusiness.set(subscriber.businessId, set);
    }
    set.add(subscriber);
    this.#size += 1;
    this.#perClient.set(subscriber.clientId, this.streamsOf(subscriber.clientId) + 1);
    let removed = false;
    return () => {
      if (removed) return;
      removed = true;
      set.delete(subscriber);
      if (set.size === 0) this.#byBusiness.delete(subscriber.businessId);
      this.#size -= 1;
      const left = this.streamsOf(subscriber.clientId) - 1;
      if (left > 0) this.#perClient.set(subscriber.clientId, left);
      else this.#perClient.delete(subscriber.clientId);
      if (this.#size === 0) this.#stop();
    };
  }

  /** Ends every stream (the server is closing). */
  endAll(reason: string): void {
    for (const set of [...this.#byBusiness.values()]) for (const subscriber of [...set]) subscriber.end(reason);
  }

  #start(): void {
    this.#cursor = Date.now();
    this.#seen.clear();
    const unsubscribe = this.wakeup.subscribe(() => void this.scan());
    const poll = setInterval(() => void this.scan(), this.pollMs);
    const check = setInterval(() => void this.#checkClients(), CLIENT_CHECK_MS);
    this.#stopTimers = () => {
      unsubscribe();
      clearInterval(poll);
      clearInterval(check);
    };
  }

  #stop(): void {
    this.#stopTimers?.();
    this.#stopTimers = undefined;
  }

  /** One pass over the trailing window for every business with a stream; a call during a pass asks for another. */
  async scan(): Promise<void> {
    if (this.#scanning) {
      this.#again = true;
      return;
    }
    this.#scanning = true;
    try {
      do {
        this.#again = false;
        await this.#pass();
      } while (this.#again && this.#size > 0);
    } catch (error) {
      this.log.warn({ err: error }, "event feed scan failed");
    } finally {
      this.#scanning = false;
    }
  }

  async #pass(): Promise<void> {
    const windowStart = this.#cursor - TRAILING_WINDOW_MS;
    let position: string | undefined;
    for (;;) {
      const businesses = [...this.#byBusiness.keys()];
      if (businesses.length === 0) return;
      const rows = await eventsSince(this.db, businesses, windowStart, SCAN_LIMIT, position);
      for (const row of rows) {
        if (!this.#seen.add(row.id, row.created_at)) continue;
        this.#cursor = Math.max(this.#cursor, row.created_at);
        for (const subscriber of this.#byBusiness.get(row.business_id) ?? []) subscriber.deliver(row);
      }
      const last = rows.at(-1);
      if (rows.length < SCAN_LIMIT || !last) break;
      position = last.id;
      // Let requests in between pages of a burst.
      await new Promise((resolve) => setImmediate(resolve));
    }
  }

  /** Ends the streams of revoked clients and of expired tokens. */
  async #checkClients(): Promise<void> {
    const now = Date.now();
    const subscribers = [...this.#byBusiness.values()].flatMap((set) => [...set]);
    for (const subscriber of subscribers) {
      if (subscriber.expiresAt !== undefined && now >= subscriber.expiresAt) {
        subscriber.end("the access token expired; reconnect with a new one");
      }
    }
    try {
      const revoked = await revokedAmong(this.db, [...this.#perClient.keys()]);
      if (revoked.size === 0) return;
      for (const subscriber of subscribers) {
        if (revoked.has(subscriber.clientId)) subscriber.end("this client has been revoked");
      }
    } catch (error) {
      this.log.warn({ err: error }, "checking open streams' clients failed");
    }
  }
}
