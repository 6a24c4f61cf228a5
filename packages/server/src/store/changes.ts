/**
 * What changed, for the per-process caches (store/caches.ts): announced in
 * the changing transaction, so every process hears of it at the commit
 * (PostgreSQL NOTIFY on the cache channel; on SQLite the commit itself,
 * store/dialect/sqlite-changes.ts), and passed at once to the process that
 * made the change.
 */
import type { DialectAdapter } from "./dialect/adapter.js";
import type { Db } from "./open.js";
import { prepare } from "./prepared.js";

/** What a cache holds, by id: API clients, or a business's live webhooks. */
export type ChangeKind = "client" | "subs";

/** The announcement that the `kind` with this id changed: the NOTIFY payload. */
export const changeKey = (kind: ChangeKind, id: string): string => `${kind}:${id}`;
/** An API client's scopes, business or revocation. */
export const clientChanged = (clientId: string): string => changeKey("client", clientId);
/** A business's live webhooks: one created, changed, deleted, disabled or enabled. */
export const subscriptionsChanged = (businessId: string): string => changeKey("subs", businessId);

/** In `db`'s transaction: every process's caches drop these keys when it commits. */
export async function announceChanges(adapter: DialectAdapter, db: Db, keys: readonly string[]): Promise<void> {
  if (keys.length > 0) await adapter.changes?.announce(db, keys);
}

/** After the commit: this process's caches drop the keys now, not when its own notification comes back. */
export function forgetChanges(adapter: DialectAdapter, keys: readonly string[]): void {
  adapter.changes?.deliverLocally(keys);
}

const businessesOf = prepare((db, p: { ids: string[] }) =>
  db.selectFrom("subscription").select("business_id").distinct().where("id", "in", p.ids),
);

/**
 * For code that changes subscriptions by id (the breaker disabling one): in
 * `db`'s transaction, announces that their businesses' webhooks changed, and
 * returns what it announced, for `forgetChanges` after the commit. Creates
 * never deliver to a deleted or disabled subscription even before the
 * announcement arrives (the outbox checks in SQL); what it saves is carrying
 * the disabled one's id in every process's cache.
 */
export async function notifySubscriptionsChanged(
  adapter: DialectAdapter,
  db: Db,
  subscriptionIds: readonly string[],
): Promise<string[]> {
  if (!adapter.changes || subscriptionIds.length === 0) return [];
  const rows = await businessesOf.all(db, { ids: [...new Set(subscriptionIds)] });
  const keys = rows.map((row) => subscriptionsChanged(row.business_id));
  await adapter.changes.announce(db, keys);
  return keys;
}
