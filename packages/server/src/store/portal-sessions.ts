/** Portal sessions: made by a client with webhooks:write, spent once by whoever opens the link. */
import type { Db } from "./open.js";
import type { PortalSessionTable } from "./schema.js";

export type PortalSessionRow = PortalSessionTable;

export async function insertPortalSession(db: Db, row: PortalSessionRow): Promise<void> {
  await db.insertInto("portal_session").values(row).execute();
}

/**
 * Spends the session whose token hashes to `tokenHash`, if it is unused and
 * unexpired. One conditional UPDATE: two tabs opening the same link at once
 * cannot both win, on either database.
 */
export async function spendPortalSession(
  db: Db,
  tokenHash: string,
  now: number,
): Promise<PortalSessionRow | undefined> {
  return db
    .updateTable("portal_session")
    .set({ used_at: now })
    .where("token_hash", "=", tokenHash)
    .where("used_at", "is", null)
    .where("expires_at", ">", now)
    .returningAll()
    .executeTakeFirst();
}

/** Drops sessions whose link expired before `before` (spent or not): they can open nothing any more. */
export async function deleteExpiredPortalSessions(db: Db, before: number): Promise<number> {
  const result = await db.deleteFrom("portal_session").where("expires_at", "<", before).executeTakeFirst();
  return Number(result.numDeletedRows);
}
