import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { dialects } from "./support/databases.js";
import { booking } from "./support/fixtures.js";
import { type Harness, startHarness, type Tenant } from "./support/harness.js";

const APPOINTMENTS = "/dr/v1/business/appointments";
const WEBHOOKS = "/notification/v1/connect/webhook/subscriptions";

describe.each(dialects())("the transactional outbox on %s", (dialect) => {
  let h: Harness;
  let clinic: Tenant;

  beforeAll(async () => {
    h = await startHarness(dialect);
    clinic = await h.tenant();
    for (const endpoint of ["https://one.example.com/", "https://two.example.com/"]) {
      await clinic.request("POST", WEBHOOKS, { endpoint, event_names: ["appointment.created", "appointment.updated"] });
    }
  });
  afterAll(async () => h?.close());

  async function counts(businessId = clinic.businessId) {
    const count = async (table: "appointment" | "event" | "delivery") => {
      const row = await h.ctx.db
        .selectFrom(table)
        .select((eb) => eb.fn.countAll<number>().as("n"))
        .where("business_id", "=", businessId)
        .executeTakeFirstOrThrow();
      return Number(row.n);
    };
    return {
      appointments: await count("appointment"),
      events: await count("event"),
      deliveries: await count("delivery"),
    };
  }

  it("leaves no record, event or delivery when the transaction fails at the last insert", async () => {
    const before = await counts();
    if (dialect === "sqlite") {
      await sql`CREATE TRIGGER refuse_delivery BEFORE INSERT ON delivery BEGIN SELECT RAISE(ABORT, 'refused by test'); END`.execute(
        h.ctx.db,
      );
    } else {
      await sql`CREATE FUNCTION refuse_delivery() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'refused by test'; END $$`.execute(
        h.ctx.db,
      );
      await sql`CREATE TRIGGER refuse_delivery BEFORE INSERT ON delivery FOR EACH ROW EXECUTE FUNCTION refuse_delivery()`.execute(
        h.ctx.db,
      );
    }
    try {
      const response = await clinic.request("POST", APPOINTMENTS, booking);
      expect(response.statusCode).toBe(500);
      expect(response.json().error.code).toBe("SERVER_ERROR");
      expect(response.body).not.toContain("refused by test");
      expect(await counts()).toEqual(before);
    } finally {
      await sql`DROP TRIGGER refuse_delivery${sql.raw(dialect === "postgres" ? " ON delivery" : "")}`.execute(h.ctx.db);
      if (dialect === "postgres") await sql`DROP FUNCTION refuse_delivery()`.execute(h.ctx.db);
    }
    const after = await clinic.request("POST", APPOINTMENTS, booking);
    expect(after.statusCode).toBe(201);
    const now = await counts();
    expect(now).toEqual({
      appointments: before.appointments + 1,
      events: before.events + 1,
      deliveries: before.deliveries + 2,
    });
  });

  it("keeps counts exact under 50 concurrent writes", async () => {
    const before = await counts();
    const responses = await Promise.all(
      Array.from({ length: 50 }, () => clinic.request("POST", APPOINTMENTS, booking)),
    );
    expect(responses.map((r) => r.statusCode)).toEqual(Array(50).fill(201));
    expect(await counts()).toEqual({
      appointments: before.appointments + 50,
      events: before.events + 50,
      deliveries: before.deliveries + 100,
    });
    const duplicates = await h.ctx.db
      .selectFrom("delivery")
      .select(["event_id", "subscription_id"])
      .select((eb) => eb.fn.countAll<number>().as("n"))
      .where("business_id", "=", clinic.businessId)
      .groupBy(["event_id", "subscription_id"])
      .having((eb) => eb.fn.countAll(), ">", 1)
      .execute();
    expect(duplicates).toEqual([]);
  });

  it("queues deliveries for a degraded webhook, and none for one the breaker disabled, cached or not", async () => {
    const tenant = await h.tenant();
    const hook = await tenant.request("POST", WEBHOOKS, {
      endpoint: "https://breaker.example.com/",
      event_names: ["appointment.created"],
    });
    const id = hook.json().id as string;
    const deliveriesOf = async (appointmentId: string) =>
      (
        await h.ctx.db
          .selectFrom("delivery")
          .innerJoin("event", "event.id", "delivery.event_id")
          .select("delivery.subscription_id")
          .where("event.resource_id", "=", appointmentId)
          .execute()
      ).map((row) => row.subscription_id);
    const book = async () => deliveriesOf((await tenant.request("POST", APPOINTMENTS, booking)).json().appointment_id);
    expect(await book()).toEqual([id]); // the business's webhooks are cached now (PostgreSQL)
    // As the breaker changes them: by id, announcing nothing.
    const setState = (state: "degraded" | "disabled") =>
      h.ctx.db.updateTable("subscription").set({ state }).where("id", "=", id).execute();
    await setState("degraded");
    expect(await book()).toEqual([id]);
    await setState("disabled");
    expect(await book()).toEqual([]);
  });

  describe("Idempotency-Key", () => {
    it("replays the first answer and creates nothing more", async () => {
      const before = await counts();
      const first = await clinic.request("POST", APPOINTMENTS, booking, { "idempotency-key": "book-1" });
      const again = await clinic.request("POST", APPOINTMENTS, booking, { "idempotency-key": "book-1" });
      expect(first.statusCode).toBe(201);
      expect(again.statusCode).toBe(201);
      expect(again.body).toBe(first.body);
      expect(again.headers["idempotent-replayed"]).toBe("true");
      expect(await counts()).toEqual({
        appointments: before.appointments + 1,
        events: before.events + 1,
        deliveries: before.deliveries + 2,
      });
    });

    it("answers 409 IDEMPOTENCY_MISMATCH for the same key with another request", async () => {
      await clinic.request("POST", APPOINTMENTS, booking, { "idempotency-key": "book-2" });
      const other = await clinic.request(
        "POST",
        APPOINTMENTS,
        { ...booking, patient_id: "pat-2" },
        { "idempotency-key": "book-2" },
      );
      expect(other.statusCode).toBe(409);
      expect(other.json().error.code).toBe("IDEMPOTENCY_MISMATCH");
    });

    it("lets twins that arrive together create one record and give the same answer", async () => {
      const before = await counts();
      const twins = await Promise.all(
        Array.from({ length: 5 }, () =>
          clinic.request("POST", APPOINTMENTS, booking, { "idempotency-key": "book-twins" }),
        ),
      );
      expect(new Set(twins.map((t) => t.body)).size).toBe(1);
      expect(twins.map((t) => t.statusCode)).toEqual(Array(5).fill(201));
      expect((await counts()).appointments).toBe(before.appointments + 1);
    });

    it("scopes keys to the client and forgets them after the TTL", async () => {
      const colleague = await clinic.colleague();
      const mine = await clinic.request("POST", APPOINTMENTS, booking, { "idempotency-key": "book-3" });
      const theirs = await colleague.request("POST", APPOINTMENTS, booking, { "idempotency-key": "book-3" });
      expect(theirs.json().appointment_id).not.toBe(mine.json().appointment_id);
      await h.ctx.db
        .updateTable("idempotency_key")
        .set({ expires_at: Date.now() - 1 })
        .where("key", "=", "book-3")
        .execute();
      const later = await clinic.request("POST", APPOINTMENTS, booking, { "idempotency-key": "book-3" });
      expect(later.headers["idempotent-replayed"]).toBeUndefined();
      expect(later.json().appointment_id).not.toBe(mine.json().appointment_id);
    });

    it("lets only one of several twins re-use an expired key", async () => {
      await clinic.request("POST", APPOINTMENTS, booking, { "idempotency-key": "book-expiring" });
      await h.ctx.db
        .updateTable("idempotency_key")
        .set({ expires_at: Date.now() - 1 })
        .where("key", "=", "book-expiring")
        .execute();
      const before = await counts();
      const twins = await Promise.all(
        Array.from({ length: 5 }, () =>
          clinic.request("POST", APPOINTMENTS, booking, { "idempotency-key": "book-expiring" }),
        ),
      );
      expect(new Set(twins.map((t) => t.body)).size).toBe(1);
      expect((await counts()).appointments).toBe(before.appointments + 1);
    });

    it("does not keep failed requests, so a corrected retry with the key works", async () => {
      const bad = await clinic.request(
        "POST",
        APPOINTMENTS,
        { ...booking, end_time: "2026-12-01T08:00:00Z" },
        { "idempotency-key": "book-4" },
      );
      expect(bad.statusCode).toBe(400);
      const good = await clinic.request("POST", APPOINTMENTS, booking, { "idempotency-key": "book-4" });
      expect(good.statusCode).toBe(201);
    });

    it("works on subscription POSTs too, and refuses a malformed key", async () => {
      const body = { endpoint: "https://idem.example.com/", event_names: ["appointment.created"] };
      const first = await clinic.request("POST", WEBHOOKS, body, { "idempotency-key": "hook-1" });
      const again = await clinic.request("POST", WEBHOOKS, body, { "idempotency-key": "hook-1" });
      expect(first.statusCode).toBe(201);
      expect(again.statusCode).toBe(201);
      expect(again.json().id).toBe(first.json().id);
      const patch = { event_names: ["appointment.updated"] };
      const patched = await clinic.request("PATCH", `${WEBHOOKS}/${first.json().id}`, patch, {
        "idempotency-key": "hook-2",
      });
      const replayed = await clinic.request("PATCH", `${WEBHOOKS}/${first.json().id}`, patch, {
        "idempotency-key": "hook-2",
      });
      expect(patched.statusCode).toBe(200);
      expect(replayed.headers["idempotent-replayed"]).toBe("true");
      const bad = await clinic.request("POST", WEBHOOKS, body, { "idempotency-key": "has spaces in it" });
      expect(bad.statusCode).toBe(400);
    });
  });
});
