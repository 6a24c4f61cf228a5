/**
 * The change feed of the per-process caches on SQLite (store/read-cache.ts).
 *
 * The API's connection makes nearly every change to API clients and
 * webhooks, and says so after its commit (`deliverLocally`). Other
 * connections change them too: the dispatcher thread's (its breaker disables
 * a webhook), another process's (`carehooks clients revoke` while `serve`
 * runs, an operator's `sqlite3` shell). SQLite counts the commits other
 * connections make to the file (`PRAGMA data_version`, a read of shared
 * memory): while the count stands, nothing has changed behind this
 * connection's back; when it moves, every cache is dropped. A request's
 * cached reads check first, so a change made elsewhere is seen by the next
 * request after its commit.
 *
 * Reading the count outside a transaction starts and ends a read
 * transaction: two fcntl lock calls, about 4 µs here, where a create's reads
 * asked two or three times. So one check serves every read until the
 * microtasks queued when it was made have run (and, made in a
 * `process.nextTick` callback, every tick that runs before them). No I/O, timer or
 * message callback runs before then, so the reads sharing a check belong to
 * work already under way, and a commit elsewhere meanwhile is concurrent with
 * them: they may be served as if they came first. A request received later is
 * read by a later callback, which checks again. The one caller that can read
 * stale within that stretch is code that commits on another connection of
 * this thread and then reads the cache synchronously, as a test driving
 * Fastify's `inject` can.
 *
 * On this connection, a cache may have read rows that a shared transaction
 * then rolled back (sqlite-durable.ts): the driver calls `dropAll` then. The
 * one change left unseen is a write here that announces nothing, which only
 * code makes; every code path that changes a client or a webhook announces
 * it (store/changes.ts).
 */
import type BetterSqlite3 from "better-sqlite3";
import type { ChangeFeed } from "./adapter.js";
import { ChangeWatchers } from "./change-watchers.js";

export interface SqliteChangeFeed extends ChangeFeed {
  /** Empties every cache: writes they may have read were rolled back. */
  dropAll(): void;
}

export function dataVersionFeed(raw: BetterSqlite3.Database): SqliteChangeFeed {
  const dataVersion = raw.prepare("PRAGMA data_version").pluck();
  let seen = dataVersion.get();
  const watchers = new ChangeWatchers();
  const dropAll = () => watchers.reset();
  /** When the check that the reads under way share was made; undefined once its microtasks have run. */
  let checkedAt: number | undefined;
  const forgetCheck = () => {
    checkedAt = undefined;
  };
  return {
    // Nothing to send: other connections see the commit itself; this one hears `deliverLocally`.
    async announce() {},
    deliverLocally: (keys) => watchers.changed(keys),
    watch: (watcher) => watchers.add(watcher),
    dropAll,
    heardUntil() {
      if (checkedAt !== undefined) return checkedAt;
      let now: unknown;
      try {
        now = dataVersion.get();
      } catch {
        // The database cannot say (closed, locked): the caches are not trusted, and every read goes to it.
        dropAll();
        return Number.NEGATIVE_INFINITY;
      }
      if (now !== seen) {
        seen = now;
        dropAll();
      }
      checkedAt = performance.now();
      queueMicrotask(forgetCheck);
      return checkedAt;
    },
  };
}
