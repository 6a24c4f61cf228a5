/** Hot statements compiled once with placeholders, on each dialect. */
import { sql } from "kysely";
import { afterEach, describe, expect, it } from "vitest";
import type { DialectAdapter } from "../src/store/dialect/adapter.js";
import { migrateDatabase, openDatabase } from "../src/store/open.js";
import { insertRows, prepare } from "../src/store/prepared.js";
import { createTestDatabase, dialects } from "./support/databases.js";

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function migrated(dialect: "sqlite" | "postgres"): Promise<DialectAdapter> {
  const database = await createTestDatabase(dialect);
  cleanups.push(() => database.drop());
  const adapter = openDatabase(database.url, { sqliteSynchronous: "NORMAL", poolSize: 2 });
  cleanups.push(() => adapter.close());
  await migrateDatabase(adapter);
  return adapter;
}

const business = (id: string, createdAt = 1) => ({ id, name: `clinic ${id}`, created_at: createdAt });

const createdBetween = prepare((db, p: { from: number; to: number }) =>
  db
    .selectFrom("business")
    .select(["id", "created_at"])
    .where("created_at", ">=", p.from)
    .where("created_at", "<", p.to)
    .where("id", "!=", "biz_constant")
    .orderBy("id"),
);

describe.each(dialects())("prepared statements on %s", (dialect) => {
  it("bind new values on every run, constants and in-lists of any length included, inside and outside transactions", async () => {
    const { db } = await migrated(dialect);
    await insertRows(db, "business", [business("biz_a", 10), business("biz_b", 10)]);
    await insertRows(db, "business", [business("biz_c", 20)]);
    await insertRows(db, "business", [business("biz_constant", 10)]);

    expect(await createdBetween.all(db, { from: 10, to: 11 })).toEqual([
      { id: "biz_a", created_at: 10 },
      { id: "biz_b", created_at: 10 },
    ]);
    expect(await createdBetween.first(db, { from: 11, to: 30 })).toEqual({ id: "biz_c", created_at: 20 });
    expect(await createdBetween.all(db, { from: 21, to: 30 })).toEqual([]);
    const inTransaction = await db.transaction().execute((trx) => createdBetween.all(trx, { from: 0, to: 100 }));
    expect(inTransaction.map((row) => row.id)).toEqual(["biz_a", "biz_b", "biz_c"]);

    const byIds = prepare((db, p: { ids: string[]; from: number }) =>
      db.selectFrom("business").select("id").where("id", "in", p.ids).where("created_at", ">=", p.from).orderBy("id"),
    );
    expect(await byIds.all(db, { ids: ["biz_a"], from: 0 })).toEqual([{ id: "biz_a" }]);
    expect(await byIds.all(db, { ids: ["biz_c", "biz_a", "biz_missing"], from: 0 })).toEqual([
      { id: "biz_a" },
      { id: "biz_c" },
    ]);
    expect(await byIds.all(db, { ids: ["biz_c", "biz_b", "biz_a"], from: 11 })).toEqual([{ id: "biz_c" }]);
    expect(await byIds.all(db, { ids: ["biz_b"], from: 0 })).toEqual([{ id: "biz_b" }]);

    const rename = prepare((db, p: { id: string; name: string }) =>
      db.updateTable("business").set({ name: p.name }).where("id", "=", p.id),
    );
    expect(await rename.run(db, { id: "biz_c", name: "renamed" })).toBe(1);
    expect(await rename.run(db, { id: "biz_missing", name: "renamed" })).toBe(0);
    const { count } = await db
      .selectFrom("business")
      .select((eb) => eb.fn.countAll<number>().as("count"))
      .where("name", "=", "renamed")
      .executeTakeFirstOrThrow();
    expect(Number(count)).toBe(1);
  });

  it("bind each row's values to its own columns, whatever order its keys come in, and leave undefined ones out", async () => {
    const { db } = await migrated(dialect);
    await insertRows(db, "business", [
      business("biz_a", 1),
      { created_at: 2, name: "clinic biz_b", id: "biz_b" },
      { name: "clinic biz_c", id: "biz_c", created_at: 3 },
    ]);
    // A column without a value is left out of the statement, as Kysely does.
    await insertRows(db, "business", [{ ...business("biz_d", 4), unused: undefined } as never, business("biz_e", 5)]);
    expect(await db.selectFrom("business").select(["id", "name", "created_at"]).orderBy("id").execute()).toEqual(
      ["a", "b", "c", "d", "e"].map((letter, i) => ({
        id: `biz_${letter}`,
        name: `clinic biz_${letter}`,
        created_at: i + 1,
      })),
    );
  });

  it("refuse rows whose columns differ, and placeholders the builder inlined into the SQL", async () => {
    const { db } = await migrated(dialect);
    await expect(
      insertRows(db, "business", [business("biz_a"), { id: "biz_b", name: "no time" } as never]),
    ).rejects.toThrow(/differ in their columns/);
    // As many columns, not the same ones.
    await expect(
      insertRows(db, "business", [business("biz_a"), { id: "biz_b", name: "other", when: 1 } as never]),
    ).rejects.toThrow(/differ in their columns/);
    const inlined = prepare((db, p: { name: string }) =>
      db.selectFrom("business").select("id").where("name", "=", sql.lit(p.name)),
    );
    await expect(inlined.all(db, { name: "x" })).rejects.toThrow(/inlined/);
    const computed = prepare((db, p: { name: string }) =>
      db.selectFrom("business").select("id").where("name", "like", `${p.name}%`),
    );
    await expect(computed.all(db, { name: "x" })).rejects.toThrow(/changed by the builder/);
    expect(await db.selectFrom("business").selectAll().execute()).toEqual([]);
  });
});
