/**
 * The change feed of the per-process caches on SQLite (store/read-cache.ts).
 *
 * The API's connection makes nearly every change to API clients and
 * webhooks, and says so (`deliverLocally`). Other connections change them
 * too: the dispatcher thread's (its breaker disables a webhook), another
 * process's (`carehooks clients revoke` while `serve` runs, an operator's
 * `sqlite3` shell). SQLite counts the commits other connections make to the
 * file (`PRAGMA data_version`, a read of shared memory): while the count
 * stands, nothing has changed behind this connection's back; when it moves,
 * every cache is dropped. The check runs before every cached read, so a
 * change made elsewhere is seen by the next request after its commit.
 *
 * The one change it cannot see is a write on this same connection that does
 * not announce itself, which only code can make; every code path that
 * changes a client or a webhook announces it (store/changes.ts).
 */
import type BetterSqlite3 from "better-sqlite3";
import type { ChangeFeed, ChangeWatcher } from "./adapter.js";

export function dataVersionFeed(raw: BetterSqlite3.Database): ChangeFeed {
  const dataVersion = raw.prepare("PRAGMA data_version").pluck();
  let seen = dataVersion.get();
  const watchers = new Set<ChangeWatcher>();
  return {
    // Nothing to send: other connections see the commit itself; this one hears `deliverLocally`.
    async announce() {},
    deliverLocally(keys) {
      for (const key of keys) for (const watcher of watchers) watcher.changed(key);
    },
    watch(watcher) {
      watchers.add(watcher);
      return () => watchers.delete(watcher);
    },
    heardUntil() {
      const now = dataVersion.get();
      if (now !== seen) {
        seen = now;
        for (const watcher of watchers) watcher.reset();
      }
      return performance.now();
    },
  };
}
