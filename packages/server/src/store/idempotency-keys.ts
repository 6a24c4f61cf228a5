/**
 * Idempotency keys, claimed inside the write transaction: a concurrent twin
 * blocks on the key row until the first commits, then finds the stored answer.
 */
import type { Db } from "./open.js";
import type { IdempotencyKeyTable } from "./schema.js";

export type IdempotencyKeyRow = IdempotencyKeyTable;

export type Claim = { kind: "claimed" } | { kind: "existing"; row: IdempotencyKeyRow };

export async function claimIdempotencyKey(
  trx: Db,
  input: { clientId: string; key: string; fingerprint: string; now: number; ttlMs: number },
): Promise<Claim> {
  const inserted = await trx
    .insertInto("idempotency_key")
    .values({
      client_id: input.clientId,
      key: input.key,
      fingerprint: input.fingerprint,
      status_code: null,
      response_body: null,
      created_at: input.now,
      expires_at: input.now + input.ttlMs,
    })
    .onConflict((conflict) => conflict.columns(["client_id", "key"]).doNothing())
    .executeTakeFirst();
  if (Number(inserted.numInsertedOrUpdatedRows ?? 0n) > 0) return { kind: "claimed" };
  const row = await trx
    .selectFrom("idempotency_key")
    .selectAll()
    .where("client_id", "=", input.clientId)
    .where("key", "=", input.key)
    .executeTakeFirstOrThrow();
  if (row.expires_at > input.now) return { kind: "existing", row };
  // Expired: the key is free again, for one of any twins racing to take it.
  const taken = await trx
    .updateTable("idempotency_key")
    .set({
      fingerprint: input.fingerprint,
      status_code: null,
      response_body: null,
      created_at: input.now,
      expires_at: input.now + input.ttlMs,
    })
    .where("client_id", "=", input.clientId)
    .where("key", "=", input.key)
    .where("expires_at", "<=", input.now)
    .executeTakeFirst();
  if (Number(taken.numUpdatedRows) === 0) {
    const fresh = await trx
      .selectFrom("idempotency_key")
      .selectAll()
      .where("client_id", "=", input.clientId)
      .where("key", "=", input.key)
      .executeTakeFirstOrThrow();
    return { kind: "existing", row: fresh };
  }
  return { kind: "claimed" };
}

export async function storeIdempotentAnswer(
  trx: Db,
  clientId: string,
  key: string,
  answer: { status: number; body: string },
): Promise<void> {
  await trx
    .updateTable("idempotency_key")
    .set({ status_code: answer.status, response_body: answer.body })
    .where("client_id", "=", clientId)
    .where("key", "=", key)
    .execute();
}

export async function deleteExpiredIdempotencyKeys(db: Db, now = Date.now()): Promise<number> {
  const result = await db.deleteFrom("idempotency_key").where("expires_at", "<=", now).executeTakeFirst();
  return Number(result.numDeletedRows);
}
