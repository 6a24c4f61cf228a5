/**
 * A per-process cache of rows that other processes change, kept no staler
 * than the change feed allows:
 *
 * - an entry is dropped when any process announces its key (store/changes.ts),
 *   and every entry when the feed may have missed announcements (reconnect);
 * - entries are served only while the feed has heard every change committed
 *   more than `stalenessMs` ago; otherwise every read goes to the database;
 * - an entry is read again after `ttlMs` whatever is announced, a safety net
 *   for changes made outside carehooks (SQL by hand).
 *
 * A read that began before a key was dropped is not stored (it may hold the
 * old row), and concurrent misses for one key share one read.
 */
import { performance } from "node:perf_hooks";
import { BoundedMap } from "../domain/bounded-map.js";
import { type ChangeKind, changeKey } from "./changes.js";
import type { ChangeFeed } from "./dialect/adapter.js";
import type { Db } from "./open.js";

export interface ReadCacheOptions {
  /** Announcements of this kind drop the entry of their id. */
  readonly kind: ChangeKind;
  readonly capacity: number;
  /** 0 turns the cache off: every read goes to the database. */
  readonly ttlMs: number;
  readonly stalenessMs: number;
}

interface Entry<V> {
  readonly value: V;
  readonly until: number;
}

export class ReadCache<V> {
  readonly #feed: ChangeFeed | undefined;
  readonly #options: ReadCacheOptions;
  readonly #load: (db: Db, id: string) => Promise<V>;
  readonly #prefix: string;
  readonly #entries: BoundedMap<string, Entry<V>>;
  readonly #loading = new Map<string, Promise<V>>();
  /** Bumped whenever anything is dropped: a read begun before then is not stored. */
  #version = 0;
  #watching = false;

  /** Without a feed (or with `ttlMs` 0) nothing is cached: `get` always reads. */
  constructor(feed: ChangeFeed | undefined, options: ReadCacheOptions, load: (db: Db, id: string) => Promise<V>) {
    this.#feed = options.ttlMs > 0 ? feed : undefined;
    this.#options = options;
    this.#load = load;
    this.#prefix = changeKey(options.kind, "");
    this.#entries = new BoundedMap(options.capacity);
  }

  /** The value for `key` (an id), read with `db` (a transaction's, inside one) when it is not cached. */
  async get(db: Db, key: string): Promise<V> {
    const feed = this.#feed;
    if (!feed) return this.#load(db, key);
    if (!this.#watching) {
      this.#watching = true;
      feed.watch({
        changed: (key) => {
          if (key.startsWith(this.#prefix)) this.forget(key.slice(this.#prefix.length));
        },
        reset: () => this.clear(),
      });
    }
    const now = performance.now();
    if (this.#deaf(feed, now)) return this.#load(db, key);
    const hit = this.#live(key, now);
    if (hit !== undefined) return hit.value;
    const pending = this.#loading.get(key);
    // Another request's read; if it fails (its transaction did), this one reads for itself.
    if (pending) return pending.catch(() => this.#load(db, key));
    const version = this.#version;
    const loading = this.#load(db, key).then((value) => {
      if (this.#version === version) this.#entries.set(key, { value, until: now + this.#options.ttlMs });
      return value;
    });
    this.#loading.set(key, loading);
    const forgetLoading = () => {
      if (this.#loading.get(key) === loading) this.#loading.delete(key);
    };
    loading.then(forgetLoading, forgetLoading);
    return loading;
  }

  /**
   * What `get` would answer for `key` without reading, synchronously: the
   * entry, or undefined when `get` would go to the database (not cached,
   * expired, the feed deaf for too long, or no cache at all).
   */
  peek(key: string): { readonly value: V } | undefined {
    const feed = this.#feed;
    // Not watching yet: nothing has been stored.
    if (!feed || !this.#watching) return undefined;
    const now = performance.now();
    return this.#deaf(feed, now) ? undefined : this.#live(key, now);
  }

  /** Deaf for too long (connection lost, or not yet open): announcements may be missing, so nothing cached is used. */
  #deaf(feed: ChangeFeed, now: number): boolean {
    return now - feed.heardUntil() > this.#options.stalenessMs;
  }

  /** The entry for `key` while it is within its TTL. */
  #live(key: string, now: number): Entry<V> | undefined {
    const hit = this.#entries.get(key);
    return hit !== undefined && now < hit.until ? hit : undefined;
  }

  forget(key: string): void {
    this.#version += 1;
    this.#entries.delete(key);
    this.#loading.delete(key);
  }

  clear(): void {
    this.#version += 1;
    this.#entries.clear();
    this.#loading.clear();
  }
}
