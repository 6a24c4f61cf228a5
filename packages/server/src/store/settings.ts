/** The `setting` table: small values the whole deployment shares (the master key check). */
import type { Db } from "./open.js";

export async function getSetting(db: Db, key: string): Promise<string | undefined> {
  const row = await db.selectFrom("setting").select("value").where("key", "=", key).executeTakeFirst();
  return row?.value;
}

/** Inserts the value unless the key exists; returns the value that is stored afterwards. */
export async function putSettingOnce(db: Db, key: string, value: string): Promise<string> {
  await db
    .insertInto("setting")
    .values({ key, value })
    .onConflict((conflict) => conflict.column("key").doNothing())
    .execute();
  return (await getSetting(db, key)) as string;
}
