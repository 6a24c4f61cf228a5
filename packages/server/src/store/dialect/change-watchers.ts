/**
 * The caches watching a change feed (store/read-cache.ts), as both dialects'
 * feeds keep them: told of each changed key, or to drop everything when
 * changes may have been missed.
 */
import type { ChangeWatcher } from "./adapter.js";

export class ChangeWatchers {
  readonly #watchers = new Set<ChangeWatcher>();

  /** Adds a watcher; the function returned removes it. */
  add(watcher: ChangeWatcher): () => void {
    this.#watchers.add(watcher);
    return () => this.#watchers.delete(watcher);
  }

  changed(keys: Iterable<string>): void {
    for (const key of keys) for (const watcher of this.#watchers) watcher.changed(key);
  }

  reset(): void {
    for (const watcher of this.#watchers) watcher.reset();
  }
}
