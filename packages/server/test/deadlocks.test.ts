/**
 * Work PostgreSQL rolls back to break a deadlock (store/aborts.ts) is run
 * again from the start: the API's write is answered as if nothing happened,
 * and the dispatcher's completion is recorded. Shown with real deadlocks
 * (support/deadlock.ts): a switch to per-resource ordering keys the webhook's
 * open deliveries and then writes the webhook, so another transaction holding
 * the webhook and asking for a delivery closes a cycle; a completion locks its
 * deliveries and then their webhook (the in-flight count's trigger).
 */
import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { newId } from "../src/domain/ids.js";
import { toApiError } from "../src/http/errors.js";
import { ABORT_RETRIES, retryAborted } from "../src/store/aborts.js";
import { directQueue } from "../src/store/queue/delivery-queue.js";
import { beat } from "../src/store/queue/workers.js";
import { succeeded } from "./support/completions.js";
import { dialects } from "./support/databases.js";
import { deadlock } from "./support/deadlock.js";
import { booking } from "./support/fixtures.js";
import { type Harness, startHarness, type Tenant } from "./support/harness.js";

const APPOINTMENTS = "/dr/v1/business/appointments";
const WEBHOOKS = "/notification/v1/connect/webhook/subscriptions";
const WORKER = { id: "wrk_deadlocks", host: "test", pid: 1 };

describe.runIf(dialects().includes("postgres"))("work PostgreSQL rolls back to break a deadlock", () => {
  let h: Harness;
  let clinic: Tenant;

  beforeAll(async () => {
    h = await startHarness("postgres");
    clinic = await h.tenant();
    await beat(h.ctx.adapter, WORKER, { timeoutMs: 3_600_000, leaseMs: 60_000 });
  });
  afterAll(async () => {
    await h?.close();
  });

  /** An unordered webhook with one pending delivery of a new appointment (no dispatcher runs). */
  async function webhookWithPending() {
    const created = await clinic.request("POST", WEBHOOKS, {
      endpoint: `https://receiver.example.com/${newId("task")}`,
      event_names: ["appointment.created"],
    });
    expect(created.statusCode, created.body).toBe(201);
    const webhook = created.json().id as string;
    const appointment = (await clinic.request("POST", APPOINTMENTS, booking)).json().appointment_id as string;
    const { rows } = await sql<{ id: string }>`
      SELECT id FROM delivery WHERE subscription_id = ${webhook}`.execute(h.ctx.db);
    expect(rows).toHaveLength(1);
    return { webhook, appointment, delivery: rows[0]?.id as string };
  }

  it("an API write is run again and answered, with its change made once", async () => {
    const retriesBefore = await retriesCounted();
    const { state, result } = await deadlock(h.ctx.db, webhookWithPending, ({ webhook, delivery }) => ({
      first: sql`UPDATE subscription SET updated_at = updated_at WHERE id = ${webhook}`,
      // Keys the delivery, then waits for the webhook's row to switch it.
      victim: () => clinic.request("PATCH", `${WEBHOOKS}/${webhook}`, { ordering: "per_resource" }),
      second: sql`UPDATE delivery SET updated_at = updated_at WHERE id = ${delivery}`,
    }));
    expect(result.statusCode, result.body).toBe(200);
    const shown = (await clinic.request("GET", `${WEBHOOKS}/${state.webhook}`)).json().data;
    expect(shown).toMatchObject({ ordering: "per_resource" });
    const keyed = await sql<{ resource_key: string | null }>`
      SELECT resource_key FROM delivery WHERE id = ${state.delivery}`.execute(h.ctx.db);
    expect(keyed.rows[0]?.resource_key).toBe(`appointment:${state.appointment}`);
    expect(await retriesCounted()).toBeGreaterThanOrEqual(retriesBefore + 1);
  });

  it("a worker's completion is run again and recorded", async () => {
    const queue = directQueue(h.ctx.adapter);
    const leased = async () => {
      const { delivery } = await webhookWithPending();
      const { claimed } = await queue.claim({ limit: 100, perEndpoint: 5, leaseMs: 60_000, workerId: WORKER.id });
      const mine = claimed.find((candidate) => candidate.id === delivery);
      if (!mine) throw new Error("the delivery was not claimed");
      return mine;
    };
    const { state, result } = await deadlock(h.ctx.db, leased, (claimed) => ({
      first: sql`UPDATE subscription SET updated_at = updated_at WHERE id = ${claimed.subscription_id}`,
      // Moves the delivery, then its trigger waits for the webhook to count it out.
      victim: () => queue.complete([succeeded(claimed)]),
      second: sql`UPDATE delivery SET updated_at = updated_at WHERE id = ${claimed.id}`,
    }));
    expect([...result.moved]).toEqual([state.id]);
    const row = await sql<{ status: string; attempts: number }>`
      SELECT status, attempts FROM delivery WHERE id = ${state.id}`.execute(h.ctx.db);
    expect(row.rows[0]).toMatchObject({ status: "succeeded", attempts: 1 });
    const attempts = await sql<{ n: number }>`
      SELECT count(*)::int AS n FROM attempt WHERE delivery_id = ${state.id}`.execute(h.ctx.db);
    expect(attempts.rows[0]?.n).toBe(1);
  });

  it("is answered 503 with Retry-After, in the documented shape, once the retries are spent", async () => {
    let runs = 0;
    const aborted = Object.assign(new Error("deadlock detected"), { code: "40P01" });
    const gaveUp = await retryAborted(h.ctx.adapter, async () => {
      runs += 1;
      throw aborted;
    }).catch((error: unknown) => error);
    expect(gaveUp).toBe(aborted);
    expect(runs).toBe(1 + ABORT_RETRIES);
    const answer = toApiError(gaveUp, h.ctx.adapter);
    expect(answer).toMatchObject({ code: "SERVICE_UNAVAILABLE", status: 503 });
    expect(answer?.headers).toHaveProperty("retry-after");
    // Anything else is not run again.
    runs = 0;
    const unique = Object.assign(new Error("duplicate key"), { code: "23505" });
    await expect(
      retryAborted(h.ctx.adapter, async () => {
        runs += 1;
        throw unique;
      }),
    ).rejects.toBe(unique);
    expect(runs).toBe(1);
  });

  async function retriesCounted(): Promise<number> {
    const metrics = await h.app.inject({ method: "GET", url: "/metrics" });
    return Number(/^carehooks_write_retries_total (\d+)$/m.exec(metrics.body)?.[1]);
  }
});
