/**
 * The creates that reach the outbox in one turn of the event loop are
 * written together (store/outbox-batch.ts), in one statement on PostgreSQL
 * and one transaction on SQLite: each still answered with its own id after
 * the commit, each event with its own deliveries, and a batch the database
 * refuses is written again one create at a time.
 */
import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../src/config/load.js";
import { newId } from "../src/domain/ids.js";
import type { AppointmentRow } from "../src/store/appointments.js";
import { outboxBatcherOf } from "../src/store/outbox-batch.js";
import { dialects } from "./support/databases.js";
import { booking } from "./support/fixtures.js";
import { type Harness, startHarness, type Tenant } from "./support/harness.js";
import { recordSqliteStatements, type SqliteStatementLog } from "./support/sqlite-statements.js";
import { recordStatements, type StatementLog } from "./support/statements.js";

const APPOINTMENTS = "/dr/v1/business/appointments";
const PRESCRIPTIONS = "/dr/v1/business/prescription";
const WEBHOOKS = "/notification/v1/connect/webhook/subscriptions";
const CREATES = 24;
/** A create's statement on PostgreSQL (store/outbox-statement.ts): data-modifying WITH clauses, an INSERT first. */
const isCreate = (text: string) => /^WITH "\w+" AS \(INSERT INTO /.test(text);

/** carehooks_create_batches as the harness's API process reports it. */
async function batchCountsOf(h: Harness) {
  const text = await h.ctx.metrics.render();
  const count = (kind: string) =>
    Number(new RegExp(`^carehooks_create_batches\\{kind="${kind}"\\} (\\d+)$`, "m").exec(text)?.[1]);
  return { batches: count("batches"), creates: count("creates") };
}

/** The deliveries of the events about `resource`, by webhook. */
async function deliveriesOfResource(h: Harness, resource: string) {
  const { rows } = await sql<{ subscription_id: string; resource_key: string | null }>`
    SELECT d.subscription_id, d.resource_key FROM delivery d JOIN event e ON e.id = d.event_id
    WHERE e.resource_id = ${resource} ORDER BY d.subscription_id`.execute(h.ctx.db);
  return rows;
}

/** Three webhooks of `clinic` for appointments and prescriptions, unordered, per resource, and deleted (the third). */
async function threeWebhooks(clinic: Tenant): Promise<string[]> {
  const webhooks: string[] = [];
  for (const [i, ordering] of ["none", "per_resource", "none"].entries()) {
    const created = await clinic.request("POST", WEBHOOKS, {
      endpoint: `https://receiver${i}.example.com/hook`,
      event_names: ["appointment.created", "prescription.created"],
      ordering,
    });
    expect(created.statusCode, created.body).toBe(201);
    webhooks.push(created.json().id);
  }
  expect((await clinic.request("DELETE", `${WEBHOOKS}/${webhooks[2]}`)).statusCode).toBe(200);
  return webhooks;
}

/** What each of `ids` (appointments) must have: one delivery to each live webhook, keyed for the ordered one. */
async function expectOwnDeliveries(h: Harness, webhooks: readonly string[], ids: readonly string[]) {
  const [unordered, ordered] = webhooks as [string, string];
  for (const id of ids) {
    expect(await deliveriesOfResource(h, id)).toEqual(
      [
        { subscription_id: unordered, resource_key: null },
        { subscription_id: ordered, resource_key: `appointment:${id}` },
      ].sort((a, b) => (a.subscription_id < b.subscription_id ? -1 : 1)),
    );
  }
}

describe.runIf(dialects().includes("postgres"))("creates batched on PostgreSQL", () => {
  let h: Harness;
  let clinic: Tenant;
  let log: StatementLog;
  const webhooks: string[] = [];

  beforeAll(async () => {
    h = await startHarness("postgres");
    clinic = await h.tenant();
    // The third is deleted: no create may give it a delivery.
    webhooks.push(...(await threeWebhooks(clinic)));
    log = recordStatements();
  });
  afterAll(async () => {
    log?.stop();
    await h?.close();
  });

  const batched = (text: string) => text.includes("json_populate_recordset");

  const batchCounts = () => batchCountsOf(h);
  const deliveriesOf = (resource: string) => deliveriesOfResource(h, resource);

  it("writes creates made together in fewer statements, each with its own event and deliveries", async () => {
    log.take();
    const answers = await Promise.all(
      Array.from({ length: CREATES }, (_, i) => clinic.request("POST", APPOINTMENTS, { ...booking, notes: `n${i}` })),
    );
    for (const answer of answers) expect(answer.statusCode, answer.body).toBe(201);
    const ids = answers.map((answer) => answer.json().appointment_id as string);
    expect(new Set(ids).size).toBe(CREATES);
    const sent = log.take().filter(isCreate);
    expect(sent.some(batched)).toBe(true);
    expect(sent.length).toBeLessThan(CREATES);
    await expectOwnDeliveries(h, webhooks, ids);
    for (const id of ids) {
      const { rows } = await sql<{ notes: string }>`SELECT notes FROM appointment WHERE id = ${id}`.execute(h.ctx.db);
      expect(rows[0]?.notes).toBe(`n${ids.indexOf(id)}`);
    }
  });

  it("writes again one at a time the creates of a batch the database refuses, each with its own outcome", async () => {
    // A lone UTF-16 surrogate: a bound parameter stores U+FFFD, but PostgreSQL refuses it escaped in JSON.
    const bodies = Array.from({ length: 8 }, (_, i) => ({ ...booking, notes: i === 3 ? "odd\ud800" : `ok${i}` }));
    const before = await batchCounts();
    log.take();
    const answers = await Promise.all(bodies.map((body) => clinic.request("POST", APPOINTMENTS, body)));
    const sent = log.take().filter(isCreate);
    expect(sent.some(batched)).toBe(true);
    // After the refused batch, each create on its own.
    const alone = sent.filter((text) => !batched(text)).length;
    expect(alone).toBeGreaterThanOrEqual(bodies.length);
    // /metrics counts what was written: each create once, and not the refused statement.
    const after = await batchCounts();
    expect(after.creates - before.creates).toBe(bodies.length);
    expect(after.batches - before.batches).toBeGreaterThanOrEqual(alone);
    expect(after.batches - before.batches).toBeLessThan(sent.length);
    for (const [i, answer] of answers.entries()) {
      expect(answer.statusCode, answer.body).toBe(201);
      const id = answer.json().appointment_id as string;
      expect(await deliveriesOf(id)).toHaveLength(2);
      const { rows } = await sql<{ notes: string }>`SELECT notes FROM appointment WHERE id = ${id}`.execute(h.ctx.db);
      expect(rows[0]?.notes).toBe(i === 3 ? "odd\ufffd" : `ok${i}`);
    }
  });
  it("writes prescriptions made together, each with its version, in fewer statements", async () => {
    log.take();
    const answers = await Promise.all(
      Array.from({ length: 12 }, (_, i) =>
        clinic.request("POST", PRESCRIPTIONS, {
          doctor_id: "d",
          patient_id: "p",
          clinic_id: "c",
          prescription_details: [{ resource_type: "notes", text: `rest ${i}` }],
        }),
      ),
    );
    const sent = log.take().filter(isCreate);
    expect(sent.some(batched)).toBe(true);
    expect(sent.length).toBeLessThan(answers.length);
    for (const [i, answer] of answers.entries()) {
      expect(answer.statusCode, answer.body).toBe(201);
      const id = answer.json().prescription_id as string;
      expect(await deliveriesOf(id)).toHaveLength(2);
      const shown = await clinic.request("GET", `${PRESCRIPTIONS}/${id}`);
      expect(shown.statusCode, shown.body).toBe(200);
      expect(shown.body).toContain(`rest ${i}`);
    }
  });
});

/** A new clinic of `h` with one webhook for appointment.created. */
async function clinicWithWebhook(h: Harness) {
  const clinic = await h.tenant();
  const webhook = await clinic.request("POST", WEBHOOKS, {
    endpoint: "https://receiver.example.com/hook",
    event_names: ["appointment.created"],
  });
  expect(webhook.statusCode, webhook.body).toBe(201);
  return { clinic, webhookId: webhook.json().id as string };
}

/** `creates` appointments made at once, each answered 201, each with its delivery to the webhook. */
async function createAppointments(h: Harness, clinic: Tenant, webhookId: string, creates: number) {
  const answers = await Promise.all(
    Array.from({ length: creates }, (_, i) => clinic.request("POST", APPOINTMENTS, { ...booking, notes: `w${i}` })),
  );
  for (const answer of answers) expect(answer.statusCode, answer.body).toBe(201);
  const { rows } = await sql<{ n: number }>`
    SELECT count(*) AS n FROM delivery WHERE subscription_id = ${webhookId}`.execute(h.ctx.db);
  expect(Number(rows[0]?.n)).toBe(creates);
}

/** The rows of each multi-row INSERT into `table` among SQLite statements `sent`. */
function insertSizes(sent: readonly string[], table: string): number[] {
  return sent
    .filter((text) => text.startsWith(`insert into "${table}"`))
    .map((text) => (text.split(" values ")[1] ?? "").split("), (").length);
}

const sqliteDeliveryInserts = (sent: readonly string[]) =>
  sent.filter((text) => text.startsWith("INSERT INTO delivery"));

describe("creates batched on SQLite", () => {
  let h: Harness;
  let clinic: Tenant;
  let log: SqliteStatementLog;
  const webhooks: string[] = [];

  beforeAll(async () => {
    log = recordSqliteStatements();
    h = await startHarness("sqlite");
    clinic = await h.tenant();
    webhooks.push(...(await threeWebhooks(clinic)));
  });
  afterAll(async () => {
    log?.stop();
    await h?.close();
  });

  it("writes creates made together in fewer statements, each with its own event and deliveries", async () => {
    const before = await batchCountsOf(h);
    log.take();
    const answers = await Promise.all(
      Array.from({ length: CREATES }, (_, i) => clinic.request("POST", APPOINTMENTS, { ...booking, notes: `n${i}` })),
    );
    const sent = log.take();
    for (const answer of answers) expect(answer.statusCode, answer.body).toBe(201);
    const ids = answers.map((answer) => answer.json().appointment_id as string);
    expect(new Set(ids).size).toBe(CREATES);
    // Several rows to an INSERT, and one delivery statement for several events.
    for (const table of ["appointment", "event"]) {
      const sizes = insertSizes(sent, table);
      expect(sizes.reduce((sum, size) => sum + size, 0)).toBe(CREATES);
      expect(sizes.length).toBeLessThan(CREATES);
      // In chunks of powers of two: a handful of statement shapes serve every batch size.
      for (const size of sizes) expect(size & (size - 1)).toBe(0);
    }
    expect(sqliteDeliveryInserts(sent).length).toBeLessThan(CREATES);
    const after = await batchCountsOf(h);
    expect(after.creates - before.creates).toBe(CREATES);
    expect(after.batches - before.batches).toBeLessThan(CREATES);
    await expectOwnDeliveries(h, webhooks, ids);
    for (const [i, id] of ids.entries()) {
      const { rows } = await sql<{ notes: string }>`SELECT notes FROM appointment WHERE id = ${id}`.execute(h.ctx.db);
      expect(rows[0]?.notes).toBe(`n${i}`);
      const events = await sql<{ n: number }>`SELECT count(*) AS n FROM event WHERE resource_id = ${id}`.execute(
        h.ctx.db,
      );
      expect(events.rows[0]?.n).toBe(1);
    }
  });

  it("writes prescriptions and appointments made together, each with its own rows", async () => {
    const before = await batchCountsOf(h);
    const answers = await Promise.all(
      Array.from({ length: 12 }, (_, i) =>
        i % 3 === 0
          ? clinic.request("POST", APPOINTMENTS, { ...booking, notes: `mixed ${i}` })
          : clinic.request("POST", PRESCRIPTIONS, {
              doctor_id: "d",
              patient_id: "p",
              clinic_id: "c",
              prescription_details: [{ resource_type: "notes", text: `rest ${i}` }],
            }),
      ),
    );
    for (const [i, answer] of answers.entries()) {
      expect(answer.statusCode, answer.body).toBe(201);
      const id = answer.json()[i % 3 === 0 ? "appointment_id" : "prescription_id"] as string;
      expect(await deliveriesOfResource(h, id)).toHaveLength(2);
      const shown = await clinic.request("GET", i % 3 === 0 ? `${APPOINTMENTS}/${id}` : `${PRESCRIPTIONS}/${id}`);
      expect(shown.statusCode, shown.body).toBe(200);
      expect(shown.body).toContain(i % 3 === 0 ? `mixed ${i}` : `rest ${i}`);
    }
    // Grouped by what they insert: a batch of each kind, not each on its own after a refused mixed one.
    const after = await batchCountsOf(h);
    expect(after.creates - before.creates).toBe(12);
    expect(after.batches - before.batches).toBeLessThan(6);
  });

  it("writes a create with an Idempotency-Key in a transaction of its own, outside the batches", async () => {
    const before = await batchCountsOf(h);
    const headers = { "idempotency-key": "batch-bypass-1" };
    const answers = await Promise.all([
      clinic.request("POST", APPOINTMENTS, { ...booking, notes: "keyed" }, headers),
      clinic.request("POST", APPOINTMENTS, { ...booking, notes: "keyed" }, headers),
    ]);
    for (const answer of answers) expect(answer.statusCode, answer.body).toBe(201);
    expect(answers[1]?.json().appointment_id).toBe(answers[0]?.json().appointment_id);
    expect(await batchCountsOf(h)).toEqual(before);
    expect(await deliveriesOfResource(h, answers[0]?.json().appointment_id)).toHaveLength(2);
  });

  it("writes again one at a time the creates of a batch SQLite refuses, each with its own outcome", async () => {
    const first = await clinic.request("POST", APPOINTMENTS, booking);
    expect(first.statusCode, first.body).toBe(201);
    const takenId = first.json().appointment_id as string;
    const { rows } = await sql<AppointmentRow>`SELECT * FROM appointment WHERE id = ${takenId}`.execute(h.ctx.db);
    const taken = rows[0] as AppointmentRow;
    const now = Date.now();
    // Six creates of one shape; the fourth reuses an appointment's id, which its primary key refuses.
    const creates = Array.from({ length: 6 }, (_, i) => {
      const id = i === 3 ? takenId : newId("appointment", now);
      return {
        records: [{ table: "appointment" as const, row: { ...taken, id, notes: `refused batch ${i}` } }],
        event: {
          id: newId("event", now),
          business_id: clinic.businessId,
          name: "appointment.created",
          resource_type: "appointment",
          resource_id: id,
          payload: `{"n":${i}}`,
          created_at: now,
        },
        subscriptionIds: webhooks,
      };
    });
    const before = await batchCountsOf(h);
    const batcher = outboxBatcherOf(h.ctx.adapter);
    const outcomes = await Promise.allSettled(creates.map((create) => batcher.write(create)));
    for (const [i, outcome] of outcomes.entries()) {
      const create = creates[i] as (typeof creates)[number];
      const { id } = (create.records[0] as (typeof create.records)[number]).row;
      const stored = await sql<{ notes: string }>`SELECT notes FROM appointment WHERE id = ${id}`.execute(h.ctx.db);
      const events = await sql<{
        n: number;
      }>`SELECT count(*) AS n FROM event WHERE id = ${create.event.id}`.execute(h.ctx.db);
      if (i === 3) {
        expect(outcome.status).toBe("rejected");
        expect(h.ctx.adapter.isUniqueViolation((outcome as PromiseRejectedResult).reason)).toBe(true);
        // Nothing of it was written: the appointment is as it was, with no second event.
        expect(stored.rows[0]?.notes).toBe(taken.notes);
        expect(events.rows[0]?.n).toBe(0);
      } else {
        // The two live webhooks; the deleted one gets nothing.
        expect(outcome).toEqual({ status: "fulfilled", value: 2 });
        expect(stored.rows[0]?.notes).toBe(`refused batch ${i}`);
        expect(events.rows[0]?.n).toBe(1);
      }
    }
    expect(await deliveriesOfResource(h, takenId)).toHaveLength(2);
    // /metrics counts what was written: five creates, each alone, and not the refused batch.
    const after = await batchCountsOf(h);
    expect(after.creates - before.creates).toBe(5);
    expect(after.batches - before.batches).toBe(5);
  });
});

describe.runIf(dialects().includes("postgres"))("CAREHOOKS_CREATE_BATCH", () => {
  /** Creates made together under `createBatch`; the statements they were written in, with their parameters. */
  async function createTogether(createBatch: string, creates: number) {
    const h = await startHarness("postgres", { CAREHOOKS_CREATE_BATCH: createBatch });
    try {
      const { clinic, webhookId } = await clinicWithWebhook(h);
      const log = recordStatements();
      try {
        await createAppointments(h, clinic, webhookId, creates);
        const sent = log.takeCalls().filter((call) => isCreate(call.text));
        return { sent, metrics: await h.ctx.metrics.render() };
      } finally {
        log.stop();
      }
    } finally {
      await h.close();
    }
  }

  /** How many creates a batched statement wrote: its events' JSON parameter, before the deliveries'. */
  const eventsIn = (values: readonly unknown[]) =>
    (JSON.parse(values[values.length - 2] as string) as unknown[]).length;

  it("writes at most that many creates in one statement", async () => {
    const { sent, metrics } = await createTogether("4", CREATES);
    const sizes = sent
      .filter((call) => call.text.includes("json_populate_recordset"))
      .map((call) => eventsIn(call.values));
    expect(Math.max(...sizes)).toBe(4);
    const lone = sent.length - sizes.length;
    expect(sizes.reduce((sum, size) => sum + size, 0) + lone).toBe(CREATES);
    // /metrics counts both: creates ÷ batches is how full they ran.
    expect(metrics).toContain(`carehooks_create_batches{kind="creates"} ${CREATES}`);
    expect(metrics).toContain(`carehooks_create_batches{kind="batches"} ${sent.length}`);
  });

  it("writes each create on its own at 1", async () => {
    const { sent, metrics } = await createTogether("1", 8);
    expect(sent).toHaveLength(8);
    expect(metrics).not.toContain("carehooks_create_batches");
    expect(sent.some((call) => call.text.includes("json_populate_recordset"))).toBe(false);
  });
});

describe("CAREHOOKS_CREATE_BATCH on SQLite", () => {
  /** Creates made together under `createBatch`; the SQLite statements they ran and the API's /metrics. */
  async function createTogether(createBatch: string, creates: number) {
    const log = recordSqliteStatements();
    const h = await startHarness("sqlite", { CAREHOOKS_CREATE_BATCH: createBatch });
    try {
      const { clinic, webhookId } = await clinicWithWebhook(h);
      log.take();
      await createAppointments(h, clinic, webhookId, creates);
      return { sent: log.take(), metrics: await h.ctx.metrics.render(), counts: await batchCountsOf(h) };
    } finally {
      log.stop();
      await h.close();
    }
  }

  it("writes at most that many creates in one transaction", async () => {
    const { sent, counts } = await createTogether("4", CREATES);
    const sizes = insertSizes(sent, "event");
    expect(Math.max(...sizes)).toBe(4);
    for (const size of sizes) expect([1, 2, 4]).toContain(size);
    expect(sizes.reduce((sum, size) => sum + size, 0)).toBe(CREATES);
    // At most 4 a batch: at least CREATES / 4 of them.
    expect(counts).toEqual({ creates: CREATES, batches: expect.any(Number) });
    expect(counts.batches).toBeGreaterThanOrEqual(CREATES / 4);
    expect(counts.batches).toBeLessThan(CREATES);
  });

  it("writes each create on its own at 1", async () => {
    const { sent, metrics } = await createTogether("1", 8);
    expect(insertSizes(sent, "event")).toEqual(Array(8).fill(1));
    expect(sqliteDeliveryInserts(sent)).toHaveLength(8);
    expect(metrics).not.toContain("carehooks_create_batches");
  });
});

describe("a SQLite batch's webhooks", () => {
  it("are looked up inside the transaction that writes the batch, not before it", async () => {
    const log = recordSqliteStatements();
    // No cache: every create reads its business's webhooks.
    const h = await startHarness("sqlite", { CAREHOOKS_CACHE_TTL: "0" });
    try {
      const { clinic, webhookId } = await clinicWithWebhook(h);
      log.take();
      await createAppointments(h, clinic, webhookId, 6);
      const sent = log.take();
      const control = /^(begin immediate|savepoint member|release member|commit|rollback to member)$/;
      const lookups = sent.flatMap((text, i) =>
        text.startsWith('select "id", "event_names", "filter" from "subscription"') ? [i] : [],
      );
      expect(lookups.length).toBeGreaterThanOrEqual(6);
      for (const at of lookups) {
        const opened = sent.slice(0, at).findLast((text) => control.test(text));
        // Inside a member of the shared transaction: a read outside one would wait for its flush.
        expect(opened).toMatch(/^(begin immediate|savepoint member)$/);
      }
    } finally {
      log.stop();
      await h.close();
    }
  });
});

describe("a SQLite batch with one business's webhooks cached and another's not", () => {
  it("is written whole, once, each event to its own business's webhook", async () => {
    const log = recordSqliteStatements();
    const h = await startHarness("sqlite");
    try {
      const [cached, uncached] = [await clinicWithWebhook(h), await clinicWithWebhook(h)];
      // One create caches the first business's webhooks; the second's are dropped, to be read.
      await createAppointments(h, cached.clinic, cached.webhookId, 1);
      h.ctx.caches.subscriptions.forget(uncached.clinic.businessId);
      expect(h.ctx.caches.subscriptions.peek(cached.clinic.businessId)).toBeDefined();
      log.take();
      const answers = await Promise.all(
        [cached, uncached, cached, uncached].map(({ clinic }, i) =>
          clinic.request("POST", APPOINTMENTS, { ...booking, notes: `mixed${i}` }),
        ),
      );
      for (const answer of answers) expect(answer.statusCode, answer.body).toBe(201);
      // Written together, after the read of the uncached business's webhooks.
      expect(insertSizes(log.take(), "event")).toEqual([4]);
      const { rows } = await sql<{ resource_id: string; subscription_id: string }>`
        SELECT e.resource_id, d.subscription_id FROM event e JOIN delivery d ON d.event_id = e.id
        WHERE e.resource_id IN (${sql.join(answers.map((answer) => answer.json().appointment_id))})
        ORDER BY e.resource_id`.execute(h.ctx.db);
      const expected = answers.map((answer, i) => ({
        resource_id: answer.json().appointment_id as string,
        subscription_id: (i % 2 === 0 ? cached : uncached).webhookId,
      }));
      expect(rows).toEqual(expected.sort((a, b) => (a.resource_id < b.resource_id ? -1 : 1)));
      const { rows: appointments } = await sql<{ n: number }>`SELECT count(*) AS n FROM appointment`.execute(h.ctx.db);
      expect(Number(appointments[0]?.n)).toBe(5);
    } finally {
      log.stop();
      await h.close();
    }
  });
});

describe("CAREHOOKS_CREATE_BATCH's range", () => {
  it("takes 1 to 1000 creates a batch and refuses anything else", () => {
    expect(loadConfig({}).createBatch).toBe(64);
    expect(loadConfig({ CAREHOOKS_CREATE_BATCH: "1" }).createBatch).toBe(1);
    expect(loadConfig({ CAREHOOKS_CREATE_BATCH: "1000" }).createBatch).toBe(1000);
    for (const refused of ["0", "1001", "8.5", "many"])
      expect(() => loadConfig({ CAREHOOKS_CREATE_BATCH: refused })).toThrow(/CAREHOOKS_CREATE_BATCH/);
  });
});
