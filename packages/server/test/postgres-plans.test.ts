/**
 * PostgreSQL keeps a prepared statement's generic plan until an ANALYZE of a
 * table it reads. A plan made while the table was nearly empty (a new
 * deployment, a worker started before the first events) reads the whole table
 * on every call as it grows, until autovacuum's next ANALYZE, a minute or more
 * later: a fan-out of ten delivered 932–2 274 a second against 3 684 and 3 980.
 * The adapter has every pooled connection drop its cached plans on a schedule
 * (store/dialect/postgres.ts). The table here has autovacuum off, and lives in a
 * database of its own, so only that can change its plan.
 *
 * Then the statements that look for due work, with many idle webhooks: their
 * plans read only the webhooks with pending deliveries (store/queue/pending.ts).
 * And the settings every connection starts with.
 */
import { createHash, randomBytes } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { sql } from "kysely";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { queueLag } from "../src/store/deliveries.js";
import { type Db, openDatabase } from "../src/store/open.js";
import { claimBatch, nextDueIn } from "../src/store/queue/claim.js";
import { rowsOf } from "../src/store/queue/raw.js";
import { beat, returnAllLeases } from "../src/store/queue/workers.js";
import { dialects } from "./support/databases.js";
import { type Harness, startHarness } from "./support/harness.js";
import { idleWebhooks, pendingDelivery, subscriptionWithDue } from "./support/queue-rows.js";
import { recordStatements } from "./support/statements.js";

const PROBE = "SELECT v FROM probe WHERE id = $1";

describe.runIf(dialects().includes("postgres"))("PostgreSQL plans made while a table was empty", () => {
  // A database of its own: creating or dropping a schema makes every backend of the same database drop
  // all its cached plans (plancache.c watches pg_namespace), and the other test files do both, all the
  // time. Once in eight CI runs that made the plain connection below plan afresh, in the shared database.
  const database = `carehooks_plans_${randomBytes(6).toString("hex")}`;
  const admin = new pg.Client({ connectionString: inject("postgresUrl") });
  /** Made when used: without PostgreSQL the URL is empty, and this suite is collected all the same. */
  const ownUrl = () => Object.assign(new URL(inject("postgresUrl")), { pathname: `/${database}` }).toString();

  beforeAll(async () => {
    await admin.connect();
    await admin.query(`CREATE DATABASE "${database}" TEMPLATE template0`);
  });
  afterAll(async () => {
    await admin.query(`DROP DATABASE IF EXISTS "${database}" WITH (FORCE)`);
    await admin.end();
  });

  /** Runs the probe often enough that PostgreSQL settles on its generic plan (after five custom ones). */
  async function settle(run: () => Promise<unknown>): Promise<void> {
    for (let i = 0; i < 8; i += 1) await run();
  }

  const planOf = (rows: readonly { "QUERY PLAN": string }[]) => rows.map((row) => row["QUERY PLAN"]).join("\n");

  it("are made again for the table as it has grown, where a plain connection keeps scanning it", async () => {
    const url = ownUrl();
    const owner = new pg.Client({ connectionString: url });
    await owner.connect();
    await owner.query(
      "CREATE TABLE probe (id integer PRIMARY KEY, v text) WITH (autovacuum_enabled = off); ANALYZE probe",
    );
    const plain = new pg.Client({ connectionString: url });
    await plain.connect();
    const adapter = openDatabase(url, { poolSize: 1 });
    const log = recordStatements();
    try {
      const backend = async () =>
        (await sql<{ pid: number }>`SELECT pg_backend_pid() AS pid`.execute(adapter.db)).rows[0]?.pid;
      const pid = await backend();
      await settle(() => plain.query({ name: "probe", text: PROBE, values: [1] }));
      await settle(() => adapter.preparedQuery?.("probe", PROBE, [1]));
      await owner.query("INSERT INTO probe SELECT n, md5(n::text) FROM generate_series(1, 200000) n");
      const plainPlan = async () => planOf((await plain.query("EXPLAIN EXECUTE probe(1)")).rows);

      // The premise: without the adapter's schedule, the empty table's plan stays.
      expect(await plainPlan()).toMatch(/Seq Scan on probe/);

      // Used until its connection drops its plans (the first drop is due 1 s after its first use).
      log.take();
      for (const started = Date.now(); !log.take().includes("DISCARD PLANS"); ) {
        expect(Date.now() - started, "a drop of cached plans within 5 s").toBeLessThan(5000);
        await sleep(100);
        expect(await adapter.preparedQuery?.("probe", PROBE, [7])).toEqual([{ v: md5Of(7) }]);
      }
      const { rows } = await sql<{ "QUERY PLAN": string }>`EXPLAIN EXECUTE probe(1)`.execute(adapter.db);
      expect(planOf(rows)).toMatch(/Index Scan using probe_pkey on probe/);
      // The same connection, its prepared statement kept: a new one would have planned afresh anyway.
      expect(await backend()).toBe(pid);
      // Nothing else made plans again meanwhile: the plain connection still has the empty table's.
      expect(await plainPlan()).toMatch(/Seq Scan on probe/);
    } finally {
      log.stop();
      await adapter.close();
      await plain.end();
      await owner.end();
    }
  });
});

describe.runIf(dialects().includes("postgres"))("the settings of carehooks' PostgreSQL connections", () => {
  const base = inject("postgresUrl");

  /** What two pooled connections of an adapter opened on `url` report for `names`. */
  async function settingsOf(url: string, names: readonly string[], postgresAsynchronousCommits = false) {
    const adapter = openDatabase(url, { poolSize: 2, postgresAsynchronousCommits });
    try {
      const read = () =>
        sql<Record<string, string>>`SELECT ${sql.join(
          names.map((name) => sql`current_setting(${name}) AS ${sql.id(name)}`),
        )}, pg_sleep(0.05) AS pause`.execute(adapter.db);
      // Two at once: two connections of the pool.
      return (await Promise.all([read(), read()])).map(({ rows }) => {
        const { pause, ...settings } = rows[0] as Record<string, string>;
        return settings;
      });
    } finally {
      await adapter.close();
    }
  }

  it("never JIT-compile, on an API's pool or a worker's", async () => {
    // JIT compiled a claim over a large backlog on every call (97 ms of 129): nothing carehooks runs gains from it.
    for (const worker of [false, true]) {
      const settings = await settingsOf(base, ["jit", "synchronous_commit"], worker);
      const expected = { jit: "off", synchronous_commit: worker ? "off" : "on" };
      expect(settings).toEqual([expected, expected]);
    }
  });

  it("apply the URL's own options after carehooks' settings, so an operator's win", async () => {
    const url = new URL(base);
    url.searchParams.set("options", "-c statement_timeout=4321 -c jit=on");
    const settings = await settingsOf(url.toString(), ["jit", "statement_timeout", "synchronous_commit"], true);
    const expected = { jit: "on", statement_timeout: "4321ms", synchronous_commit: "off" };
    expect(settings).toEqual([expected, expected]);
  });
});

describe.runIf(dialects().includes("postgres"))(
  "PostgreSQL's statements that look for due work, with many idle webhooks",
  () => {
    const WORKER = { id: "wrk_plans", host: "test", pid: 1 };
    let h: Harness;
    beforeAll(async () => {
      h = await startHarness("postgres");
    });
    afterAll(async () => h?.close());

    it("read only the webhooks with pending deliveries, each by its key", async () => {
      const tenant = await h.tenant();
      const { adapter, db } = h.ctx;
      const now = Date.now();
      // The webhooks with work fall mid-way through the ids, so a merge join over every webhook would read half.
      await idleWebhooks(db, tenant.businessId, 5000);
      const busy = await subscriptionWithDue(db, tenant.businessId, "active", null, now - 2000);
      await pendingDelivery(db, tenant.businessId, busy.id, now - 1000);
      // And one whose delivery is due in a minute.
      await subscriptionWithDue(db, tenant.businessId, "active", null, now + 60_000);
      await idleWebhooks(db, tenant.businessId, 5000);
      // Statistics that know the webhooks are many, as in a deployment that has run a while.
      await sql`ANALYZE subscription`.execute(db);
      await sql`ANALYZE delivery`.execute(db);

      const log = recordStatements();
      try {
        await beat(adapter, WORKER, { timeoutMs: 3_600_000, leaseMs: 60_000 });
        expect(
          (await claimBatch(adapter, { limit: 10, perEndpoint: 10, leaseMs: 60_000, workerId: WORKER.id })).claimed,
        ).toHaveLength(2);
        await nextDueIn(adapter);
        await queueLag(adapter, Date.now());
      } finally {
        log.stop();
      }
      const walks = log.takeCalls().filter((call) => /\bpending\(id\)/.test(call.text));
      // The beat's sweep of deleted and disabled webhooks' deliveries, the claim, the next due time and the queue's depth.
      expect(walks).toHaveLength(4);
      // Pending again, as the claim found them.
      await returnAllLeases(adapter);

      for (const { text, values } of walks) {
        const nodes = nodesOf(await genericPlan(db, text, values));
        expect(
          nodes.some((node) => node["Node Type"] === "Recursive Union"),
          text,
        ).toBe(true);
        // Each read of a webhook is a search by its id, once per webhook with work and once for the walk's
        // closing NULL, finding at most that one row. The queue's depth reads no webhook at all.
        const reads = nodes
          .filter((node) => node["Relation Name"] === "subscription")
          .map((node) => ({
            byId: /^\(?\(?(s\.)?id = /.test(node["Index Cond"] ?? node["Recheck Cond"] ?? ""),
            loops: node["Actual Loops"] ?? 0,
            rowsPerLoop: (node["Actual Rows"] ?? 0) + (node["Rows Removed by Filter"] ?? 0),
          }));
        expect({ text, reads }).toEqual({
          text,
          reads: reads.map((read) => ({
            byId: true,
            loops: Math.min(read.loops, 3),
            rowsPerLoop: Math.min(read.rowsPerLoop, 1),
          })),
        });
      }
    });
  },
);

/**
 * The plan a statement sent as `text` runs with once its prepared statement has gone generic (the
 * claim is prepared by name, so after five runs a worker uses that one), executed in a transaction
 * that is rolled back.
 */
async function genericPlan(db: Db, text: string, values: readonly unknown[]): Promise<PlanNode> {
  return db.connection().execute(async (connection) => {
    await sql`BEGIN`.execute(connection);
    let prepared = false;
    try {
      await sql`SET LOCAL plan_cache_mode = force_generic_plan`.execute(connection);
      await sql.raw(`PREPARE plan_under_test AS ${text}`).execute(connection);
      prepared = true;
      // EXECUTE's arguments as literals: a utility statement takes no bound parameters.
      const parameters = values.length > 0 ? `(${values.map(literalOf).join(", ")})` : "";
      const [row] = await rowsOf<{ "QUERY PLAN": { Plan: PlanNode }[] }>(
        connection,
        `EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE plan_under_test${parameters}`,
        [],
      );
      const plan = row?.["QUERY PLAN"][0]?.Plan;
      if (!plan) throw new Error(`no plan for ${text}`);
      return plan;
    } finally {
      await sql`ROLLBACK`.execute(connection);
      // A PREPARE outlives its transaction.
      if (prepared) await sql`DEALLOCATE plan_under_test`.execute(connection);
    }
  });
}

/** A bound value as an untyped SQL literal, which takes the type of the parameter it is given to. */
function literalOf(value: unknown): string {
  if (value === null || value === undefined) return "NULL";
  if (Array.isArray(value)) {
    const items = value.map((item) => (item === null ? "NULL" : `"${String(item).replace(/["\\]/g, "\\$&")}"`));
    return pg.escapeLiteral(`{${items.join(",")}}`);
  }
  return pg.escapeLiteral(String(value));
}

interface PlanNode {
  readonly "Node Type": string;
  readonly "Relation Name"?: string;
  readonly "Index Cond"?: string;
  readonly "Recheck Cond"?: string;
  readonly "Actual Rows"?: number;
  readonly "Actual Loops"?: number;
  readonly "Rows Removed by Filter"?: number;
  readonly Plans?: readonly PlanNode[];
}

function nodesOf(node: PlanNode): PlanNode[] {
  return [node, ...(node.Plans ?? []).flatMap(nodesOf)];
}

function md5Of(n: number): string {
  return createHash("md5").update(String(n)).digest("hex");
}
