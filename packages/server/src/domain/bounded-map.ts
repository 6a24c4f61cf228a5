/**
 * A cache that holds at most `capacity` entries and forgets the least
 * recently used first: `lru-cache`, plus the one call every cache here makes
 * (`getOrSet`: the cached value, or the one `make` computes on a miss).
 */
import { LRUCache } from "lru-cache";

/** `{}`: lru-cache's own bound, any value but null and undefined. */
export class BoundedMap<K extends {}, V extends {}> extends LRUCache<K, V> {
  constructor(capacity: number) {
    super({ max: capacity });
  }

  /** The cached value, computed by `make` on a miss. */
  getOrSet(key: K, make: () => V): V {
    const cached = this.get(key);
    if (cached !== undefined) return cached;
    const value = make();
    this.set(key, value);
    return value;
  }
}
