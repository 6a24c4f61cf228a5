/**
 * PostgreSQL keeps a prepared statement's generic plan until an ANALYZE of a
 * table it reads. A plan made while the table was nearly empty (a new
 * deployment, a worker started before the first events) reads the whole table
 * on every call as it grows, until autovacuum's ANALYZE, a minute or more
 * later: a fan-out of ten ran at a third of its rate. The adapter has every
 * pooled connection drop its cached plans on a schedule (store/dialect/postgres.ts).
 * The table here has autovacuum off, so only that can change its plan.
 */
import { createHash, randomBytes } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { sql } from "kysely";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openDatabase } from "../src/store/open.js";
import { dialects } from "./support/databases.js";
import { POSTGRES_URL } from "./support/global-setup.js";

const PROBE = "SELECT v FROM probe WHERE id = $1";

describe.runIf(dialects().includes("postgres"))("PostgreSQL plans made while a table was empty", () => {
  const schema = `t_${randomBytes(6).toString("hex")}`;
  const admin = new pg.Client({ connectionString: POSTGRES_URL });
  const url = new URL(POSTGRES_URL);
  url.searchParams.set("schema", schema);

  beforeAll(async () => {
    await admin.connect();
    await admin.query(`CREATE SCHEMA "${schema}"`);
    await admin.query(`CREATE TABLE "${schema}".probe (id integer PRIMARY KEY, v text) WITH (autovacuum_enabled = off)`);
    // Statistics of an empty table, as a new deployment has them.
    await admin.query(`ANALYZE "${schema}".probe`);
  });
  afterAll(async () => {
    await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await admin.end();
  });

  /** Runs the probe often enough that PostgreSQL settles on its generic plan (after five custom ones). */
  async function settle(run: () => Promise<unknown>): Promise<void> {
    for (let i = 0; i < 8; i += 1) await run();
  }

  const grow = () =>
    admin.query(`INSERT INTO "${schema}".probe SELECT n, md5(n::text) FROM generate_series(1, 200000) n`);

  it("are made again for the table as it has grown, where a plain connection keeps scanning it", async () => {
    const plain = new pg.Client({ connectionString: POSTGRES_URL, options: `-c search_path=${schema}` });
    await plain.connect();
    const adapter = openDatabase(url.toString(), { poolSize: 1 });
    try {
      await settle(() => plain.query({ name: "probe", text: PROBE, values: [1] }));
      await settle(() => adapter.preparedQuery?.("probe", PROBE, [1]));
      const firstUse = Date.now();
      await grow();

      const plainPlan = await plain.query("EXPLAIN EXECUTE probe(1)");
      // The premise: without the adapter's schedule, the empty table's plan stays.
      expect(plainPlan.rows.map((row) => row["QUERY PLAN"]).join("\n")).toMatch(/Seq Scan on probe/);

      // Past the first drop (1 s after the connection was first taken), the next use drops the plan first.
      await sleep(Math.max(0, firstUse + 1200 - Date.now()));
      expect(await adapter.preparedQuery?.("probe", PROBE, [7])).toEqual([{ v: md5Of(7) }]);
      const { rows } = await sql<{ "QUERY PLAN": string }>`EXPLAIN EXECUTE probe(1)`.execute(adapter.db);
      expect(rows.map((row) => row["QUERY PLAN"]).join("\n")).toMatch(/Index Scan using probe_pkey on probe/);
    } finally {
      await plain.end();
      await adapter.close();
    }
  });
});

function md5Of(n: number): string {
  return createHash("md5").update(String(n)).digest("hex");
}
