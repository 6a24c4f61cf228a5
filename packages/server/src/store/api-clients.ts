import { newId } from "../domain/ids.js";
import type { Scope } from "../domain/scopes.js";
import { hashSecret, randomToken } from "../domain/secrets.js";
import { announceChanges, clientChanged, forgetChanges } from "./changes.js";
import type { DialectAdapter } from "./dialect/adapter.js";
import type { Db } from "./open.js";
import { prepare } from "./prepared.js";
import type { ApiClientTable } from "./schema.js";

export interface ApiClient {
  id: string;
  business_id: string;
  name: string;
  scopes: Scope[];
  created_at: number;
  revoked_at: number | null;
}

export interface ApiClientWithSecretHash extends ApiClient {
  secret_hash: string;
}

function fromRow(row: ApiClientTable): ApiClientWithSecretHash {
  return { ...row, scopes: row.scopes.split(" ").filter(Boolean) as Scope[] };
}

export interface ClientSecret {
  readonly secret: string;
  readonly hash: string;
}

/** A new client secret and its hash: hashing is slow, so a transaction gets one made before it begins. */
export async function newClientSecret(): Promise<ClientSecret> {
  const secret = randomToken("chs_");
  return { secret, hash: await hashSecret(secret) };
}

/** Creates a client and returns its secret, which is stored only as a hash and cannot be shown again. */
export async function createApiClient(
  db: Db,
  input: { businessId: string; name: string; scopes: readonly Scope[] },
  now = Date.now(),
  credentials?: ClientSecret,
): Promise<{ client: ApiClient; secret: string }> {
  const { secret, hash } = credentials ?? (await newClientSecret());
  const row: ApiClientTable = {
    id: newId("client", now),
    business_id: input.businessId,
    name: input.name,
    secret_hash: hash,
    scopes: input.scopes.join(" "),
    created_at: now,
    revoked_at: null,
  };
  await db.insertInto("api_client").values(row).execute();
  const { secret_hash: _hash, ...client } = fromRow(row);
  return { client, secret };
}

const apiClientById = prepare((db, p: { id: string }) =>
  db.selectFrom("api_client").selectAll().where("id", "=", p.id),
);

export async function findApiClient(db: Db, id: string): Promise<ApiClientWithSecretHash | undefined> {
  const row = await apiClientById.first(db, { id });
  return row && fromRow(row);
}

export async function listApiClients(db: Db, businessId?: string): Promise<ApiClient[]> {
  let query = db
    .selectFrom("api_client")
    .select(["id", "business_id", "name", "scopes", "created_at", "revoked_at"])
    .orderBy("id");
  if (businessId) query = query.where("business_id", "=", businessId);
  const rows = await query.execute();
  return rows.map((row) => ({ ...row, scopes: row.scopes.split(" ").filter(Boolean) as Scope[] }));
}

/**
 * Revokes the client and every refresh token it holds; its access tokens fail
 * at their next use: at once in this process, and as soon as every other
 * process hears of it (store/changes.ts).
 */
export async function revokeApiClient(adapter: DialectAdapter, id: string, now = Date.now()): Promise<boolean> {
  const revoked = await adapter.db.transaction().execute(async (trx) => {
    const result = await trx
      .updateTable("api_client")
      .set({ revoked_at: now })
      .where("id", "=", id)
      .where("revoked_at", "is", null)
      .executeTakeFirst();
    await trx
      .updateTable("refresh_token")
      .set({ revoked_at: now })
      .where("client_id", "=", id)
      .where("revoked_at", "is", null)
      .execute();
    await announceChanges(adapter, trx, [clientChanged(id)]);
    return Number(result.numUpdatedRows) > 0;
  });
  forgetChanges(adapter, [clientChanged(id)]);
  return revoked;
}

/** Of these client ids, the ones revoked or gone: one query for every open stream's client. */
export async function revokedAmong(db: Db, ids: readonly string[]): Promise<Set<string>> {
  if (ids.length === 0) return new Set();
  const live = await db
    .selectFrom("api_client")
    .select("id")
    .where("id", "in", ids)
    .where("revoked_at", "is", null)
    .execute();
  const alive = new Set(live.map((row) => row.id));
  return new Set(ids.filter((id) => !alive.has(id)));
}
