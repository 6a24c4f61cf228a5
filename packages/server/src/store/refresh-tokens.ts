/**
 * Rotating refresh tokens. Each refresh spends the token and issues the next
 * one in the same family; presenting a spent token again means it leaked, so
 * the whole family is revoked (the legitimate holder must log in again).
 */
import { randomUUID } from "node:crypto";
import { randomToken, sha256 } from "../domain/secrets.js";
import type { Db } from "./open.js";

export async function issueRefreshToken(
  db: Db,
  input: { clientId: string; familyId?: string; ttlMs: number },
  now = Date.now(),
): Promise<string> {
  const token = randomToken("chr_");
  await db
    .insertInto("refresh_token")
    .values({
      token_hash: sha256(token),
      client_id: input.clientId,
      family_id: input.familyId ?? randomUUID(),
      created_at: now,
      expires_at: now + input.ttlMs,
      used_at: null,
      revoked_at: null,
    })
    .execute();
  return token;
}

export type RefreshOutcome =
  | { kind: "rotated"; clientId: string; token: string }
  | { kind: "invalid" }
  | { kind: "reused" };

export async function rotateRefreshToken(
  db: Db,
  token: string,
  ttlMs: number,
  now = Date.now(),
): Promise<RefreshOutcome> {
  return db.transaction().execute(async (trx) => {
    const row = await trx
      .selectFrom("refresh_token")
      .selectAll()
      .where("token_hash", "=", sha256(token))
      .executeTakeFirst();
    if (!row || row.revoked_at !== null || row.expires_at <= now) return { kind: "invalid" } as const;
    const revokeFamily = async () => {
      await trx
        .updateTable("refresh_token")
        .set({ revoked_at: now })
        .where("family_id", "=", row.family_id)
        .where("revoked_at", "is", null)
        .execute();
      return { kind: "reused" } as const;
    };
    if (row.used_at !== null) return revokeFamily();
    // Conditional on used_at so two concurrent refreshes with one token cannot both win; the loser
    // presented a spent token, which is reuse all the same.
    const spent = await trx
      .updateTable("refresh_token")
      .set({ used_at: now })
      .where("token_hash", "=", row.token_hash)
      .where("used_at", "is", null)
      .executeTakeFirst();
    if (Number(spent.numUpdatedRows) === 0) return revokeFamily();
    const next = await issueRefreshToken(trx, { clientId: row.client_id, familyId: row.family_id, ttlMs }, now);
    return { kind: "rotated", clientId: row.client_id, token: next } as const;
  });
}

/** Drops tokens that can no longer be used; returns how many. */
export async function deleteExpiredRefreshTokens(db: Db, now = Date.now()): Promise<number> {
  const result = await db.deleteFrom("refresh_token").where("expires_at", "<=", now).executeTakeFirst();
  return Number(result.numDeletedRows);
}

/**
 * Revokes the family of the refresh token (a sign-out): neither it nor any
 * token rotated from it renews a session again. Answers whether one was found.
 */
export async function revokeRefreshFamily(db: Db, token: string, now = Date.now()): Promise<boolean> {
  const row = await db
    .selectFrom("refresh_token")
    .select("family_id")
    .where("token_hash", "=", sha256(token))
    .executeTakeFirst();
  if (!row) return false;
  await db
    .updateTable("refresh_token")
    .set({ revoked_at: now })
    .where("family_id", "=", row.family_id)
    .where("revoked_at", "is", null)
    .execute();
  return true;
}
