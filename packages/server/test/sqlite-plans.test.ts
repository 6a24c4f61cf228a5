/**
 * SQLite plans a join as nested loops. A statement that joins a list of
 * deliveries (a JSON list, or a create's rows of bound values) to the tables
 * must loop over the list and find each row by its key: looping over the
 * in-flight deliveries instead, with the list scanned for each, costs
 * in-flight × list rows. Statistics taken while nothing is in
 * flight (an operator's ANALYZE or PRAGMA optimize) rate the partial indexes
 * of in-flight deliveries as empty, and SQLite chose that loop for the
 * completion, the claim's credit and releases. This runs the real statements
 * through the store, then asks SQLite how it would plan each with such
 * statistics on a large database.
 */
import path from "node:path";
import BetterSqlite3 from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { firstIdAt } from "../src/domain/ids.js";
import { eventsSince } from "../src/store/events.js";
import { claimBatch, nextDueIn } from "../src/store/queue/claim.js";
import { type Completion, completeBatch } from "../src/store/queue/complete.js";
import { beat, releaseLeases } from "../src/store/queue/workers.js";
import { DELIVERY_BY_ID, EVENT_BY_ID, SUBSCRIPTION_BY_ID } from "../src/store/sqlite-keys.js";
import { type Harness, startHarness, type Tenant } from "./support/harness.js";

const WORKER = { id: "wrk_plans", host: "test", pid: 1 };
/** A loop over a table of the store (by its name or the aliases the statements give it), not over a CTE. */
const TABLE_SCAN = /^SCAN (delivery|d|q|f|p|subscription|s|event|e)\b/;
const PRIMARY_KEYS = { delivery: DELIVERY_BY_ID, event: EVENT_BY_ID, subscription: SUBSCRIPTION_BY_ID };
const DELIVERY_SCAN = /^SCAN (delivery|d|q|f|p)\b/;

/**
 * Records every statement text better-sqlite3 prepares from now on (the store prepares each once
 * per connection), until `stop`. Copy `texts` before preparing anything else while reading it.
 */
function recordPrepared(): { readonly texts: Set<string>; stop(): void } {
  const texts = new Set<string>();
  const prepare = BetterSqlite3.prototype.prepare;
  BetterSqlite3.prototype.prepare = function recorded(this: BetterSqlite3.Database, source: string) {
    texts.add(source);
    return prepare.call(this, source);
  } as typeof prepare;
  return {
    texts,
    stop: () => {
      BetterSqlite3.prototype.prepare = prepare;
    },
  };
}

describe("SQLite statements over a JSON list of deliveries, after ANALYZE with nothing in flight", () => {
  let h: Harness;
  let tenant: Tenant;
  /** Every statement text the store prepared on its connection while the test ran. */
  let recording: ReturnType<typeof recordPrepared>;

  beforeAll(async () => {
    recording = recordPrepared();
    h = await startHarness("sqlite");
    tenant = await h.tenant();
    const webhook = await tenant.request("POST", "/notification/v1/connect/webhook/subscriptions", {
      endpoint: "https://receiver.example.com/hook",
      event_names: ["appointment.created"],
    });
    expect(webhook.statusCode).toBe(201);
    await createAppointments(tenant, 30);
  });
  afterAll(async () => {
    recording?.stop();
    await h?.close();
  });

  it("loop over the list and find each delivery by its id", async () => {
    const { adapter } = h.ctx;
    await beat(adapter, WORKER, { timeoutMs: 3_600_000, leaseMs: 60_000 });
    const limits = { limit: 10, perEndpoint: 10, leaseMs: 60_000, workerId: WORKER.id };
    const first = await claimBatch(adapter, limits);
    expect(first.claimed).toHaveLength(10);
    // Answered but not yet written: credit for the next claim.
    const credit = new Map(first.claimed.slice(0, 5).map((d) => [d.id, d.lease_token]));
    const second = await claimBatch(adapter, { ...limits, credit });
    expect(second.claimed.length).toBeGreaterThan(0);
    const now = Date.now();
    const completions: Completion[] = first.claimed.map((d) => ({
      deliveryId: d.id,
      subscriptionId: d.subscription_id,
      leaseToken: d.lease_token,
      outcome: { kind: "succeeded" },
      decidedAt: now,
      statusCode: 200,
      error: null,
      attempt: {
        id: `att_${d.id}`,
        delivery_id: d.id,
        n: 1,
        started_at: now,
        duration_ms: 1,
        request_headers: "{}",
        request_meta: null,
        response_status: 200,
        response_body: "",
        error: null,
      },
    }));
    expect((await completeBatch(adapter, completions)).moved.size).toBe(10);
    expect(
      await releaseLeases(
        adapter,
        second.claimed.map((d) => ({ id: d.id, token: d.lease_token })),
      ),
    ).toBe(second.claimed.length);

    const overLists = [...recording.texts].filter(
      (text) => /json_each|FROM \(VALUES /.test(text) && /\b(delivery|subscription)\b/.test(text),
    );
    // A create's deliveries (bound rows), the claim (its credit), the claimed deliveries' webhooks, and the held leases (of a
    // completion and of a release, which then update each row by its rowid).
    expect(overLists).toHaveLength(4);
    const planner = new BetterSqlite3(path.join(h.database.dataDir, "carehooks.db"));
    try {
      // The names the statements pin are the primary keys' indexes.
      for (const [table, index] of Object.entries(PRIMARY_KEYS)) {
        expect(
          planner.prepare(`SELECT name FROM pragma_index_list('${table}') WHERE origin = 'pk'`).pluck().get(),
        ).toBe(index);
      }
      smallStatistics(planner);
      expectListsFirst(planner, overLists, "small");
      largeAtRest(planner);
      expectListsFirst(planner, overLists, "large, at rest");
      // The claim's per-resource check reads the partial index of open, ordered deliveries: an unordered
      // webhook's deliveries are not in it at all (their resource_key is NULL).
      const claim = [...recording.texts].find((text) => /NOT EXISTS/.test(text) && /resource_key/.test(text));
      expect(claim).toBeDefined();
      const reads = (planner.prepare(`EXPLAIN QUERY PLAN ${claim}`).all(placeholdersOf(claim as string)) as PlanStep[])
        .map((step) => step.detail)
        .filter((detail) => /^(SCAN|SEARCH) p\b/.test(detail));
      expect(reads.filter((detail) => !detail.startsWith("SEARCH"))).toEqual([]);
      expect(reads).toContain(
        "SEARCH p USING INDEX delivery_resource_open (subscription_id=? AND resource_key=? AND id<?)",
      );
    } finally {
      planner.close();
    }
  });
});

describe("the event stream's scan", () => {
  const run = recordingHarness();

  it("reads a range of the business's ids: every event's time is its id's", async () => {
    const { h } = run;
    const tenant = await h.tenant();
    await createAppointments(tenant, 5);
    const rows = await h.ctx.db.selectFrom("event").select(["id", "created_at"]).execute();
    expect(rows.length).toBeGreaterThanOrEqual(5);
    for (const { id, created_at } of rows) {
      expect(id >= firstIdAt("event", created_at) && id < firstIdAt("event", created_at + 1), id).toBe(true);
    }
    const since = Math.min(...rows.map((row) => row.created_at));
    const scanned = await eventsSince(h.ctx.db, tenant.businessId, since, 3);
    expect(scanned.map((row) => row.id)).toEqual(
      rows
        .map((row) => row.id)
        .sort()
        .slice(0, 3),
    );
    const next = await eventsSince(h.ctx.db, tenant.businessId, since, 100, scanned.at(-1)?.id);
    expect(next.map((row) => row.id)).toEqual(
      rows
        .map((row) => row.id)
        .sort()
        .slice(3),
    );

    const scan = [...run.texts].find((text) => /from "event"/.test(text) && /order by "id"/.test(text));
    expect(scan).toBeDefined();
    const planner = new BetterSqlite3(path.join(h.database.dataDir, "carehooks.db"));
    try {
      const plan = (
        planner.prepare(`EXPLAIN QUERY PLAN ${scan}`).all(placeholdersOf(scan as string)) as PlanStep[]
      ).map((step) => step.detail);
      expect(plan).toEqual(["SEARCH event USING INDEX event_business (business_id=? AND id>?)"]);
    } finally {
      planner.close();
    }
  });
});

describe("the queue's depth on /readyz and /metrics", () => {
  const run = recordingHarness();

  it("reads only the partial indexes of pending and in-flight deliveries, never the whole table", async () => {
    const { h } = run;
    expect((await h.app.inject({ method: "GET", url: "/readyz" })).statusCode).toBe(200);
    expect((await h.app.inject({ method: "GET", url: "/metrics" })).statusCode).toBe(200);
    const counts = [...run.texts].filter((text) => /count\(\*\)/.test(text) && /\bdelivery\b/.test(text));
    expect(counts).toHaveLength(1);
    const planner = new BetterSqlite3(path.join(h.database.dataDir, "carehooks.db"));
    try {
      for (const statistics of ["none", "small"]) {
        if (statistics === "small") smallStatistics(planner);
        const plan = planner
          .prepare(`EXPLAIN QUERY PLAN ${counts[0]}`)
          .all()
          .map((step) => (step as PlanStep).detail)
          .filter((detail) => /^(SCAN|SEARCH) (delivery|d)\b/.test(detail));
        expect({ statistics, plan }).toEqual({
          statistics,
          plan: [
            expect.stringMatching(/INDEX delivery_due\b/),
            // The oldest due: each webhook's first, by its key.
            expect.stringMatching(/^SEARCH d USING COVERING INDEX delivery_due \(subscription_id=\?\)$/),
            expect.stringMatching(/INDEX delivery_leased_(subscription|worker)\b/),
          ],
        });
      }
    } finally {
      planner.close();
    }
  });
});

describe("the statements that look for due work, with many idle webhooks", () => {
  const run = recordingHarness();

  it("walk the webhooks with pending deliveries by key and never read every webhook", async () => {
    const { h } = run;
    const tenant = await h.tenant();
    const webhook = await tenant.request("POST", "/notification/v1/connect/webhook/subscriptions", {
      endpoint: "https://receiver.example.com/hook",
      event_names: ["appointment.created"],
    });
    expect(webhook.statusCode).toBe(201);
    await createAppointments(tenant, 3);
    await beat(h.ctx.adapter, WORKER, { timeoutMs: 3_600_000, leaseMs: 60_000 });
    const { claimed } = await claimBatch(h.ctx.adapter, {
      limit: 10,
      perEndpoint: 10,
      leaseMs: 60_000,
      workerId: WORKER.id,
    });
    expect(claimed).toHaveLength(3);
    await nextDueIn(h.ctx.adapter);
    expect((await h.app.inject({ method: "GET", url: "/metrics" })).statusCode).toBe(200);
    const walks = [...run.texts].filter((text) => /\bpending\(id\)/.test(text));
    // The claim, the next due time, the queue's depth, and the beat's sweep of deleted and disabled webhooks' deliveries.
    expect(walks).toHaveLength(4);
    const planner = new BetterSqlite3(path.join(h.database.dataDir, "carehooks.db"));
    try {
      for (const statistics of ["none", "small", "large, at rest"]) {
        if (statistics === "small") smallStatistics(planner);
        if (statistics === "large, at rest") largeAtRest(planner);
        for (const text of walks) {
          const plan = (planner.prepare(`EXPLAIN QUERY PLAN ${text}`).all(placeholdersOf(text)) as PlanStep[]).map(
            (step) => step.detail,
          );
          // Every webhook read is found by its key; the walk goes from one webhook's entries in delivery_due to the next's.
          expect({
            statistics,
            text,
            webhookScans: plan.filter((detail) => /^SCAN (subscription|s)\b/.test(detail)),
          }).toEqual({
            statistics,
            text,
            webhookScans: [],
          });
          expect(plan, `${statistics}: ${text}`).toContain(
            "SEARCH n USING COVERING INDEX delivery_due (subscription_id>?)",
          );
          // The queue's depth counts the partial indexes of pending and in-flight deliveries (the test above).
          const counts = /AS in_flight/.test(text)
            ? /^SCAN delivery USING COVERING INDEX delivery_(due|leased_\w+)$/
            : /$^/;
          expect(plan.filter((detail) => DELIVERY_SCAN.test(detail) && !counts.test(detail))).toEqual([]);
        }
      }
    } finally {
      planner.close();
    }
  });
});

/** Statistics of this small database, as if it had since grown: every table looks tiny. */
function smallStatistics(planner: BetterSqlite3.Database): void {
  planner.exec("ANALYZE");
  planner.exec("ANALYZE sqlite_schema");
}

/**
 * Statistics of a large database at rest, over smallStatistics': a million events and deliveries,
 * none in flight, and ten thousand webhooks.
 */
function largeAtRest(planner: BetterSqlite3.Database): void {
  planner.exec(`UPDATE sqlite_stat1 SET stat = '1000000' || substr(stat, instr(stat || ' ', ' '))
    WHERE tbl IN ('delivery', 'event') AND stat NOT LIKE '0%'`);
  planner.exec(`UPDATE sqlite_stat1 SET stat = '10000' || substr(stat, instr(stat || ' ', ' '))
    WHERE tbl = 'subscription'`);
  planner.exec("ANALYZE sqlite_schema");
}

/**
 * Each list drives its loop: no table of the store is scanned in an outer loop of the same query,
 * and the rows the list names are found by their keys (a search), never by a scan or a skip-scan.
 */
function expectListsFirst(planner: BetterSqlite3.Database, texts: readonly string[], statistics: string): void {
  for (const text of texts) {
    const plan = planner.prepare(`EXPLAIN QUERY PLAN ${text}`).all(placeholdersOf(text)) as PlanStep[];
    // A JSON list (json_each), or bound rows: SQLite scans a VALUES of several rows in place, one row as `v`.
    const list = plan.find((step) => /^SCAN (j|json_each|v|\d+-ROW VALUES CLAUSE)\b/.test(step.detail));
    expect(list, `${statistics}: ${text}`).toBeDefined();
    const outer = plan
      .slice(0, plan.indexOf(list as PlanStep))
      .filter((step) => step.parent === list?.parent && TABLE_SCAN.test(step.detail))
      .map((step) => step.detail);
    const inner = plan
      .filter((step) => step.parent === list?.parent && plan.indexOf(step) > plan.indexOf(list as PlanStep))
      .filter((step) => TABLE_SCAN.test(step.detail) || /\bANY\(/.test(step.detail))
      .map((step) => step.detail);
    const scans = plan.filter((step) => DELIVERY_SCAN.test(step.detail)).map((step) => step.detail);
    expect({ statistics, text, outer, inner, scans }).toEqual({ statistics, text, outer: [], inner: [], scans: [] });
  }
}

/** A harness for the describe block, recording the statements its store prepares (`run.h`, `run.texts`). */
function recordingHarness(): { readonly h: Harness; readonly texts: Set<string> } {
  let h: Harness | undefined;
  let recording: ReturnType<typeof recordPrepared> | undefined;
  beforeAll(async () => {
    recording = recordPrepared();
    h = await startHarness("sqlite");
  });
  afterAll(async () => {
    recording?.stop();
    await h?.close();
  });
  return {
    get h() {
      return h as Harness;
    },
    get texts() {
      return (recording as ReturnType<typeof recordPrepared>).texts;
    },
  };
}

/** `n` appointments of the tenant, each created through the API (an event and its deliveries). */
async function createAppointments(tenant: Tenant, n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    const created = await tenant.request("POST", "/dr/v1/business/appointments", {
      doctor_id: "doc_1",
      patient_id: `pat_${i}`,
      clinic_id: "cln_1",
      start_time: "2026-12-01T09:00:00Z",
      end_time: "2026-12-01T09:30:00Z",
    });
    expect(created.statusCode).toBe(201);
  }
}

/** A row of EXPLAIN QUERY PLAN: loops nest under their parent's id. */
interface PlanStep {
  readonly id: number;
  readonly parent: number;
  readonly detail: string;
}

/** Values for a statement's parameters, enough for SQLite to plan it: named (`@x`) or positional (`?`). */
function placeholdersOf(text: string): Record<string, unknown> | unknown[] {
  const named = [...text.matchAll(/@(\w+)/g)].map((match) => match[1] as string);
  if (named.length > 0) return Object.fromEntries(named.map((name) => [name, "[]"]));
  return [...text.matchAll(/\?/g)].map(() => "[]");
}
