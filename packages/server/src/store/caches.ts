/**
 * The per-process caches a create reads before it writes: the calling API
 * client (the auth hook) and the live webhooks of its business (the outbox).
 * On PostgreSQL each read they save is a round trip. On SQLite each saves
 * a statement per create, where a batch of creates runs only a handful of
 * others in all. How each dialect hears of changes: DialectAdapter.changes.
 */
import type { Config } from "../config/load.js";
import { type ApiClient, findApiClient } from "./api-clients.js";
import type { DialectAdapter } from "./dialect/adapter.js";
import type { Db } from "./open.js";
import { ReadCache } from "./read-cache.js";
import { type LiveSubscription, liveSubscriptionsOf } from "./subscriptions.js";

/** What authentication needs of a client: no secret hash is kept in memory. */
export type CachedClient = Omit<ApiClient, "name" | "created_at">;

export interface Caches {
  /** By client id; undefined for none. */
  readonly clients: ReadCache<CachedClient | undefined>;
  /** By business id: its subscriptions that are neither deleted nor disabled. */
  readonly subscriptions: ReadCache<readonly LiveSubscription[]>;
}

export function createCaches(
  adapter: DialectAdapter,
  config: Pick<Config, "cacheSize" | "cacheTtl" | "cacheStaleness">,
): Caches {
  const options = { capacity: config.cacheSize, ttlMs: config.cacheTtl, stalenessMs: config.cacheStaleness };
  return {
    clients: new ReadCache(adapter.changes, { ...options, kind: "client" }, async (db: Db, id) => {
      const client = await findApiClient(db, id);
      return (
        client && {
          id: client.id,
          business_id: client.business_id,
          scopes: client.scopes,
          revoked_at: client.revoked_at,
        }
      );
    }),
    subscriptions: new ReadCache<readonly LiveSubscription[]>(
      adapter.changes,
      { ...options, kind: "subs" },
      liveSubscriptionsOf,
    ),
  };
}
