/**
 * A write PostgreSQL aborts to break a deadlock (or a serialization failure)
 * is run again, from the start, instead of answering 500: the abort rolled
 * everything back, and PostgreSQL's own advice is to retry such a
 * transaction. Shown with a real deadlock: a switch to per-resource ordering
 * locks its webhook, then the webhook's open deliveries; another transaction
 * holds one of those deliveries and then asks for the webhook.
 */
import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { toApiError } from "../src/http/errors.js";
import { CONFLICT_RETRIES, retryConflicts } from "../src/store/conflicts.js";
import { dialects } from "./support/databases.js";
import { booking, until } from "./support/fixtures.js";
import { type Harness, startHarness, type Tenant } from "./support/harness.js";

const APPOINTMENTS = "/dr/v1/business/appointments";
const WEBHOOKS = "/notification/v1/connect/webhook/subscriptions";

describe.runIf(dialects().includes("postgres"))("a write aborted by PostgreSQL to break a deadlock", () => {
  let h: Harness;
  let clinic: Tenant;

  beforeAll(async () => {
    h = await startHarness("postgres");
    clinic = await h.tenant();
  });
  afterAll(async () => {
    await h?.close();
  });

  /** Backends waiting for a lock the backend `holder` holds. */
  async function waitingFor(holder: number): Promise<number> {
    const { rows } = await sql<{ n: number }>`
      SELECT count(*)::int AS n FROM pg_stat_activity WHERE ${holder} = ANY(pg_blocking_pids(pid))`.execute(h.ctx.db);
    return rows[0]?.n ?? 0;
  }

  it("is run again and answered, with its change made once", async () => {
    const created = await clinic.request("POST", WEBHOOKS, {
      endpoint: "https://receiver.example.com/hook",
      event_names: ["appointment.created"],
    });
    expect(created.statusCode, created.body).toBe(201);
    const webhook = created.json().id as string;
    const appointment = (await clinic.request("POST", APPOINTMENTS, booking)).json().appointment_id as string;
    // No dispatcher runs: the delivery stays pending, unkeyed (the webhook is unordered).
    const delivery = await sql<{ id: string }>`
      SELECT id FROM delivery WHERE subscription_id = ${webhook} AND resource_key IS NULL`.execute(h.ctx.db);
    expect(delivery.rows).toHaveLength(1);
    const deliveryId = delivery.rows[0]?.id as string;

    let switched: Promise<{ statusCode: number; body: string }> | undefined;
    await h.ctx.db.transaction().execute(async (trx) => {
      // The switch's backend, waiting first, finds the deadlock first and is the one aborted.
      await sql`SET LOCAL deadlock_timeout = '10s'`.execute(trx);
      const holder = (await sql<{ pid: number }>`SELECT pg_backend_pid() AS pid`.execute(trx)).rows[0]?.pid as number;
      await sql`UPDATE delivery SET updated_at = updated_at WHERE id = ${deliveryId}`.execute(trx);
      switched = clinic.request("PATCH", `${WEBHOOKS}/${webhook}`, { ordering: "per_resource" });
      // The switch has locked the webhook and waits for the delivery this transaction holds.
      await until(async () => (await waitingFor(holder)) > 0, 10_000, "the switch to wait for the delivery");
      await sql`UPDATE subscription SET updated_at = updated_at WHERE id = ${webhook}`.execute(trx);
    });

    const answer = await (switched as Promise<{ statusCode: number; body: string }>);
    expect(answer.statusCode, answer.body).toBe(200);
    const shown = (await clinic.request("GET", `${WEBHOOKS}/${webhook}`)).json().data;
    expect(shown).toMatchObject({ ordering: "per_resource" });
    const keyed = await sql<{ resource_key: string | null }>`
      SELECT resource_key FROM delivery WHERE id = ${deliveryId}`.execute(h.ctx.db);
    expect(keyed.rows[0]?.resource_key).toBe(`appointment:${appointment}`);
    const metrics = await h.app.inject({ method: "GET", url: "/metrics" });
    expect(metrics.body).toContain("carehooks_write_retries_total 1\n");
  });

  it("is answered 503 with Retry-After, in the documented shape, once the retries are spent", async () => {
    let runs = 0;
    const deadlock = Object.assign(new Error("deadlock detected"), { code: "40P01" });
    const gaveUp = await retryConflicts(h.ctx.adapter, async () => {
      runs += 1;
      throw deadlock;
    }).catch((error: unknown) => error);
    expect(gaveUp).toBe(deadlock);
    expect(runs).toBe(1 + CONFLICT_RETRIES);
    const answer = toApiError(gaveUp, h.ctx.adapter);
    expect(answer).toMatchObject({ code: "SERVICE_UNAVAILABLE", status: 503 });
    expect(answer?.headers).toHaveProperty("retry-after");
    // Anything else is not run again.
    runs = 0;
    const unique = Object.assign(new Error("duplicate key"), { code: "23505" });
    await expect(
      retryConflicts(h.ctx.adapter, async () => {
        runs += 1;
        throw unique;
      }),
    ).rejects.toBe(unique);
    expect(runs).toBe(1);
  });
});
