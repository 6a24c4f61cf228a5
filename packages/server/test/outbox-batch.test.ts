/**
 * PostgreSQL writes the creates that reach the outbox in one turn of the
 * event loop in one statement (store/outbox-batch.ts): each still answered
 * with its own id after the commit, each event with its own deliveries, and
 * a create the database refuses does not take the others of its batch down.
 */
import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { dialects } from "./support/databases.js";
import { booking } from "./support/fixtures.js";
import { type Harness, startHarness, type Tenant } from "./support/harness.js";
import { recordStatements, type StatementLog } from "./support/statements.js";

const APPOINTMENTS = "/dr/v1/business/appointments";
const WEBHOOKS = "/notification/v1/connect/webhook/subscriptions";
const CREATES = 24;

describe.runIf(dialects().includes("postgres"))("creates batched on PostgreSQL", () => {
  let h: Harness;
  let clinic: Tenant;
  let log: StatementLog;
  const webhooks: string[] = [];

  beforeAll(async () => {
    h = await startHarness("postgres");
    clinic = await h.tenant();
    for (const [i, ordering] of ["none", "per_resource", "none"].entries()) {
      const created = await clinic.request("POST", WEBHOOKS, {
        endpoint: `https://receiver${i}.example.com/hook`,
        event_names: ["appointment.created"],
        ordering,
      });
      expect(created.statusCode, created.body).toBe(201);
      webhooks.push(created.json().id);
    }
    // The third is deleted: no create may give it a delivery.
    expect((await clinic.request("DELETE", `${WEBHOOKS}/${webhooks[2]}`)).statusCode).toBe(200);
    log = recordStatements();
  });
  afterAll(async () => {
    log?.stop();
    await h?.close();
  });

  const batched = (text: string) => text.includes("json_populate_recordset");

  async function deliveriesOf(appointment: string) {
    const { rows } = await sql<{ subscription_id: string; resource_key: string | null }>`
      SELECT d.subscription_id, d.resource_key FROM delivery d JOIN event e ON e.id = d.event_id
      WHERE e.resource_id = ${appointment} ORDER BY d.subscription_id`.execute(h.ctx.db);
    return rows;
  }

  it("writes creates made together in fewer statements, each with its own event and deliveries", async () => {
    log.take();
    const answers = await Promise.all(
      Array.from({ length: CREATES }, (_, i) => clinic.request("POST", APPOINTMENTS, { ...booking, notes: `n${i}` })),
    );
    for (const answer of answers) expect(answer.statusCode, answer.body).toBe(201);
    const ids = answers.map((answer) => answer.json().appointment_id as string);
    expect(new Set(ids).size).toBe(CREATES);
    const sent = log.take().filter((text) => text.startsWith("WITH"));
    expect(sent.some(batched)).toBe(true);
    expect(sent.length).toBeLessThan(CREATES);
    const [unordered, ordered] = webhooks as [string, string];
    for (const id of ids) {
      const found = await deliveriesOf(id);
      expect(found).toEqual(
        [
          { subscription_id: unordered, resource_key: null },
          { subscription_id: ordered, resource_key: `appointment:${id}` },
        ].sort((a, b) => (a.subscription_id < b.subscription_id ? -1 : 1)),
      );
      const { rows } = await sql<{ notes: string }>`SELECT notes FROM appointment WHERE id = ${id}`.execute(h.ctx.db);
      expect(rows[0]?.notes).toBe(`n${ids.indexOf(id)}`);
    }
  });

  it("answers a create the database refuses on its own, and writes the others of its batch", async () => {
    log.take();
    const bodies = Array.from({ length: 8 }, (_, i) => ({ ...booking, notes: i === 3 ? "bad\u0000byte" : `ok${i}` }));
    const answers = await Promise.all(bodies.map((body) => clinic.request("POST", APPOINTMENTS, body)));
    expect(log.take().some(batched)).toBe(true);
    answers.forEach((answer, i) => {
      if (i === 3) {
        expect(answer.statusCode, answer.body).toBe(400);
        expect(answer.json().error.code).toBe("INVALID_REQUEST");
      } else {
        expect(answer.statusCode, answer.body).toBe(201);
      }
    });
    for (const [i, answer] of answers.entries()) {
      if (i === 3) continue;
      expect(await deliveriesOf(answer.json().appointment_id)).toHaveLength(2);
    }
    const { rows } = await sql<{ n: number }>`
      SELECT count(*)::int AS n FROM appointment WHERE notes LIKE 'bad%'`.execute(h.ctx.db);
    expect(rows[0]?.n).toBe(0);
  });
});
