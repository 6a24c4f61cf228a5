import { newId } from "../domain/ids.js";
import type { Db } from "./open.js";
import type { BusinessTable } from "./schema.js";

export type Business = BusinessTable;

export async function findBusiness(db: Db, idOrName: string): Promise<Business | undefined> {
  return db
    .selectFrom("business")
    .selectAll()
    .where((eb) => eb.or([eb("id", "=", idOrName), eb("name", "=", idOrName)]))
    .executeTakeFirst();
}

export async function createBusiness(db: Db, name: string, now = Date.now()): Promise<Business> {
  const business = { id: newId("business", now), name, created_at: now };
  await db.insertInto("business").values(business).execute();
  return business;
}

export async function countBusinesses(db: Db): Promise<number> {
  const row = await db
    .selectFrom("business")
    .select((eb) => eb.fn.countAll<number>().as("n"))
    .executeTakeFirstOrThrow();
  return Number(row.n);
}
