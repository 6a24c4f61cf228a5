/**
 * Per-webhook delivery settings, end to end through a real receiver:
 * per-resource ordering (with retries in between), a webhook's own cap, and
 * its rate limit; and how each is validated.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { newId } from "../src/domain/ids.js";
import { recordEvent } from "../src/store/outbox.js";
import { dialects } from "./support/databases.js";
import { booking, until } from "./support/fixtures.js";
import { type Harness, LOCAL_DELIVERY_ENV, startHarness, untilFailed } from "./support/harness.js";
import type { Received, Receiver } from "./support/receiver.js";
import { serverWithWebhooks, WEBHOOKS } from "./support/webhook-server.js";

const APPOINTMENTS = "/dr/v1/business/appointments";

const resourceOf = (request: Received) => (JSON.parse(request.body) as { data: { appointment_id: string } }).data;

interface Seen {
  readonly resource: string;
  readonly event: string;
  readonly at: number;
  status?: number;
}

/**
 * Answers 503 while `down`, then 200 after 100 ms, and records the successes and the most
 * requests of one resource open at once.
 */
function watchResources(receiver: Receiver) {
  const watch = { down: true, peakSameResource: 0, succeeded: [] as Seen[] };
  const open = new Map<string, number>();
  receiver.answer = (request) => {
    if (watch.down) return { status: 503 };
    const resource = resourceOf(request).appointment_id;
    open.set(resource, (open.get(resource) ?? 0) + 1);
    watch.peakSameResource = Math.max(watch.peakSameResource, open.get(resource) ?? 0);
    watch.succeeded.push({ resource, event: String(request.headers["webhook-id"]), at: Date.now(), status: 200 });
    setTimeout(() => open.set(resource, (open.get(resource) ?? 1) - 1), 100);
    return { status: 200, delayMs: 100 };
  };
  return watch;
}

describe.each(dialects())("per-webhook delivery settings on %s", (dialect) => {
  const webhook = serverWithWebhooks(dialect, {
    CAREHOOKS_RETRY_SCHEDULE: "200ms,200ms,200ms,200ms,200ms",
    CAREHOOKS_BREAKER_THRESHOLD: "1000",
    CAREHOOKS_MAX_IN_FLIGHT_PER_ENDPOINT: "8",
  });

  it("sends one resource's events one at a time, in the order written, retries included; others in parallel", async () => {
    const { tenant, receiver, id } = await webhook({ ordering: "per_resource" });
    expect((await tenant.request("GET", `${WEBHOOKS}/${id}`)).json().data).toMatchObject({ ordering: "per_resource" });
    const seen: Seen[] = [];
    const open = new Map<string, number>();
    let peakSameResource = 0;
    let peakAll = 0;
    let failedOnce = 0;
    const attempted = new Set<string>();
    receiver.answer = (request) => {
      const resource = resourceOf(request).appointment_id;
      const event = String(request.headers["webhook-id"]);
      const entry: Seen = { resource, event, at: Date.now() };
      seen.push(entry);
      open.set(resource, (open.get(resource) ?? 0) + 1);
      peakSameResource = Math.max(peakSameResource, open.get(resource) ?? 0);
      peakAll = Math.max(
        peakAll,
        [...open.values()].reduce((a, b) => a + b, 0),
      );
      // Every third event fails its first attempt: its successors must wait for the retry.
      const first = !attempted.has(event);
      attempted.add(event);
      const status = first && Number.parseInt(event.slice(-2), 32) % 3 === 0 ? 500 : 200;
      if (status === 500) failedOnce++;
      entry.status = status;
      setTimeout(() => open.set(resource, (open.get(resource) ?? 1) - 1), 15);
      return { status, delayMs: 15 };
    };

    const appointments: string[] = [];
    for (let i = 0; i < 6; i++) {
      appointments.push((await tenant.request("POST", APPOINTMENTS, booking)).json().appointment_id);
    }
    for (let round = 0; round < 3; round++) {
      for (const appointment of appointments) {
        const changed = await tenant.request("PATCH", `${APPOINTMENTS}/${appointment}`, { notes: `round ${round}` });
        expect(changed.statusCode, changed.body).toBe(200);
      }
    }
    const events = appointments.length * 4;
    const answered = () => new Set(seen.filter((entry) => entry.status === 200).map((entry) => entry.event)).size;
    await until(() => answered() === events, 20_000, "every event answered 200");

    expect(failedOnce).toBeGreaterThan(0);
    expect(peakSameResource).toBe(1);
    expect(peakAll).toBeGreaterThan(1);
    for (const appointment of appointments) {
      const mine = seen.filter((entry) => entry.resource === appointment);
      // Event ids are time-ordered: the order written. Each arrives only after the one before succeeded.
      const succeeded = mine.filter((entry) => entry.status === 200).map((entry) => entry.event);
      expect(succeeded).toHaveLength(4);
      expect([...succeeded].sort()).toEqual(succeeded);
      for (let i = 1; i < mine.length; i++) {
        const before = mine[i - 1] as Seen;
        const now = mine[i] as Seen;
        if (now.event !== before.event) expect(before.status).toBe(200);
      }
    }
  });

  it("orders what was already queued when a webhook switches ordering on", async () => {
    // Five seconds of retries, not one: the switch, made while they fail, can meet a worker's
    // completion and wait out PostgreSQL's deadlock_timeout (1 s) before it is run again.
    const { tenant, receiver, id } = await webhook({ retry_schedule: [1, 1, 1, 1, 1] });
    const watch = watchResources(receiver);
    // Written while the webhook is unordered: three events per appointment, each failing its first attempt.
    const appointments: string[] = [];
    for (let i = 0; i < 3; i++) {
      const appointment = (await tenant.request("POST", APPOINTMENTS, booking)).json().appointment_id as string;
      appointments.push(appointment);
      for (const notes of ["one", "two"]) {
        expect((await tenant.request("PATCH", `${APPOINTMENTS}/${appointment}`, { notes })).statusCode).toBe(200);
      }
    }
    await receiver.waitFor(9, 5_000);
    const switched = await tenant.request("PATCH", `${WEBHOOKS}/${id}`, { ordering: "per_resource" });
    expect(switched.statusCode, switched.body).toBe(200);
    watch.down = false;
    await until(
      () => new Set(watch.succeeded.map((entry) => entry.event)).size === 9,
      20_000,
      "every event answered 200",
    );
    // Their retries were due together; once ordered, each resource's go one at a time, in the order written.
    expect(watch.peakSameResource).toBe(1);
    for (const appointment of appointments) {
      const mine = watch.succeeded.filter((entry) => entry.resource === appointment).map((entry) => entry.event);
      expect(mine).toHaveLength(3);
      expect([...mine].sort()).toEqual(mine);
    }
  });

  it("holds a resource's new events back behind one that was in flight when ordering was switched on", async () => {
    const { tenant, receiver, id } = await webhook({});
    const answered = new Map<string, number>();
    const arrived = new Map<string, number>();
    receiver.answer = (request) => {
      const event = String(request.headers["webhook-id"]);
      arrived.set(event, Date.now());
      const delayMs = arrived.size === 1 ? 3_000 : 0;
      setTimeout(() => answered.set(event, Date.now()), delayMs);
      return { status: 200, delayMs };
    };
    const appointment = (await tenant.request("POST", APPOINTMENTS, booking)).json().appointment_id as string;
    await receiver.waitFor(1, 5_000);
    const switched = await tenant.request("PATCH", `${WEBHOOKS}/${id}`, { ordering: "per_resource" });
    expect(switched.statusCode, switched.body).toBe(200);
    expect((await tenant.request("PATCH", `${APPOINTMENTS}/${appointment}`, { notes: "after" })).statusCode).toBe(200);
    // Still at the receiver: the update was queued behind a delivery in flight.
    expect(answered.size).toBe(0);
    await until(() => answered.size === 2, 10_000, "both events answered");
    const [first, second] = [...arrived.keys()];
    // The update was written while the create was still at the receiver: it went only once that one was answered.
    expect(arrived.get(second as string)).toBeGreaterThanOrEqual(answered.get(first as string) as number);
  });

  it("orders failed deliveries recovered after a webhook switched ordering on", async () => {
    const { tenant, receiver, id } = await webhook({});
    const watch = watchResources(receiver);
    const since = new Date(Date.now() - 1_000).toISOString();
    for (let i = 0; i < 2; i++) {
      const appointment = (await tenant.request("POST", APPOINTMENTS, booking)).json().appointment_id as string;
      for (const notes of ["one", "two"]) {
        expect((await tenant.request("PATCH", `${APPOINTMENTS}/${appointment}`, { notes })).statusCode).toBe(200);
      }
    }
    await untilFailed(tenant, id, 6);
    expect((await tenant.request("PATCH", `${WEBHOOKS}/${id}`, { ordering: "per_resource" })).statusCode).toBe(200);
    watch.down = false;
    const recover = await tenant.request("POST", `${WEBHOOKS}/${id}/recover`, { since });
    expect(recover.statusCode, recover.body).toBe(202);
    await until(
      () => new Set(watch.succeeded.map((entry) => entry.event)).size === 6,
      15_000,
      "every event answered 200",
    );
    expect(watch.peakSameResource).toBe(1);
  });

  it("keeps a webhook's own lower cap", async () => {
    const { tenant, receiver } = await webhook({ max_in_flight: 2 });
    let open = 0;
    let peak = 0;
    receiver.answer = () => {
      open += 1;
      peak = Math.max(peak, open);
      setTimeout(() => (open -= 1), 60);
      return { status: 200, delayMs: 60 };
    };
    await Promise.all(Array.from({ length: 12 }, () => tenant.request("POST", APPOINTMENTS, booking)));
    await receiver.waitFor(12, 20_000);
    expect(peak).toBe(2);
  });

  it("holds a webhook to its rate limit", async () => {
    const { tenant, receiver } = await webhook({ rate_limit: 5 });
    const created = await Promise.all(Array.from({ length: 12 }, () => tenant.request("POST", APPOINTMENTS, booking)));
    expect(created.map((response) => response.statusCode)).toEqual(Array(12).fill(201));
    await receiver.waitFor(12, 20_000);
    const times = receiver.received.map((request) => request.at).sort((a, b) => a - b);
    // A second's worth (5) at once, then one every 200 ms: the 12th sent no sooner than 7 × 200 ms after the
    // first. Receipts: the first also waited for its connection to open (up to ~50 ms on a busy machine),
    // the 12th reused one, so their gap may be that much shorter.
    expect((times.at(-1) as number) - (times[0] as number)).toBeGreaterThanOrEqual(7 * 200 - 100);
    // The first second holds the burst and the refill: at most 5 + 5.
    const inOneSecond = times.filter((at) => at - (times[0] as number) < 1000).length;
    expect(inOneSecond).toBeLessThanOrEqual(10);
  });

  it("validates the settings and lets PATCH change and clear them", async () => {
    const { tenant, id } = await webhook({});
    const refused = async (body: Record<string, unknown>, pattern: RegExp) => {
      const response = await tenant.request("PATCH", `${WEBHOOKS}/${id}`, body);
      expect(response.statusCode, response.body).toBe(400);
      expect(response.json().error.message).toMatch(pattern);
    };
    await refused({ ordering: "by_clinic" }, /ordering/);
    await refused({ max_in_flight: 9 }, /max_in_flight must be a whole number from 1 to 8/);
    await refused({ max_in_flight: 0 }, /max_in_flight/);
    await refused({ rate_limit: 10_001 }, /rate_limit must be a whole number from 1 to 10000/);
    const read = async () => (await tenant.request("GET", `${WEBHOOKS}/${id}`)).json().data;
    expect(await read()).toMatchObject({ ordering: "none", max_in_flight: null, rate_limit: null });
    const changed = await tenant.request("PATCH", `${WEBHOOKS}/${id}`, {
      ordering: "per_resource",
      max_in_flight: 3,
      rate_limit: 20,
    });
    expect(changed.statusCode, changed.body).toBe(200);
    expect(await read()).toMatchObject({ ordering: "per_resource", max_in_flight: 3, rate_limit: 20 });
    await tenant.request("PATCH", `${WEBHOOKS}/${id}`, { max_in_flight: null, rate_limit: null });
    expect(await read()).toMatchObject({ ordering: "per_resource", max_in_flight: null, rate_limit: null });
  });
});

describe.each(dialects())("per-resource ordering through a breaker trip on %s", (dialect) => {
  const webhook = serverWithWebhooks(dialect, {
    CAREHOOKS_RETRY_SCHEDULE: "100ms,100ms,200ms,400ms,800ms,1s,1s,1s,1s,1s",
    CAREHOOKS_BREAKER_THRESHOLD: "3",
    CAREHOOKS_DISABLE_AFTER: "1h",
  });

  it("keeps each resource's order through a breaker trip and its recovery", async () => {
    const { tenant, receiver, id } = await webhook({ ordering: "per_resource" });
    let failing = true;
    receiver.answer = () => (failing ? { status: 503 } : { status: 200, delayMs: 5 });
    const appointments: string[] = [];
    for (let i = 0; i < 4; i++)
      appointments.push((await tenant.request("POST", APPOINTMENTS, booking)).json().appointment_id);
    for (const appointment of appointments) {
      await tenant.request("PATCH", `${APPOINTMENTS}/${appointment}`, { notes: "first" });
      await tenant.request("PATCH", `${APPOINTMENTS}/${appointment}`, { notes: "second" });
    }
    await until(
      async () => (await tenant.request("GET", `${WEBHOOKS}/${id}`)).json().data.state === "degraded",
      15_000,
      "degraded",
    );
    failing = false;
    await until(
      async () => (await tenant.request("GET", `${WEBHOOKS}/${id}`)).json().data.state === "active",
      15_000,
      "active again",
    );
    const succeeded = async () => {
      const list = (await tenant.request("GET", `${WEBHOOKS}/${id}/deliveries?limit=100`)).json().data as {
        status: string;
      }[];
      return list.length === 12 && list.every((delivery) => delivery.status === "succeeded");
    };
    await until(succeeded, 20_000, "every delivery to succeed");
    // Attempts failed before the breaker opened, and probes after: more requests than deliveries.
    expect(receiver.received.length).toBeGreaterThan(12);
    // After the recovery, each resource's events arrived in the order written.
    for (const appointment of appointments) {
      const events = receiver.received
        .filter((request) => resourceOf(request).appointment_id === appointment)
        .map((request) => String(request.headers["webhook-id"]));
      const firsts = events.filter((event, i) => events.indexOf(event) === i);
      expect(firsts).toHaveLength(3);
      expect([...firsts].sort()).toEqual(firsts);
    }
  });
});

describe.each(dialects().filter((dialect) => dialect === "postgres"))("switching ordering on %s", (dialect) => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness(dialect, LOCAL_DELIVERY_ENV);
  });
  afterAll(async () => {
    await h?.close();
  });

  it("keys the delivery of a create that read the webhook as unordered and committed after the switch", async () => {
    const tenant = await h.tenant();
    const created = await tenant.request("POST", WEBHOOKS, {
      endpoint: "http://127.0.0.1:9/hook",
      event_names: ["appointment.created"],
    });
    expect(created.statusCode, created.body).toBe(201);
    const webhookId = created.json().id as string;
    // A create whose statement has read the webhook as unordered, and has not committed yet.
    const now = Date.now();
    const event = {
      id: newId("event", now),
      business_id: tenant.businessId,
      name: "appointment.created",
      resource_type: "appointment",
      resource_id: "apt_late",
      payload: "{}",
      created_at: now,
    };
    let commit!: () => void;
    const committed = new Promise<void>((resolve) => {
      commit = resolve;
    });
    let written!: () => void;
    const wrote = new Promise<void>((resolve) => {
      written = resolve;
    });
    const create = h.ctx.db.transaction().execute(async (trx) => {
      expect(await recordEvent(h.ctx.adapter, trx, { records: [], event, subscriptionIds: [webhookId] })).toBe(1);
      written();
      await committed;
    });
    await wrote;
    let answered = false;
    const switched = tenant.request("PATCH", `${WEBHOOKS}/${webhookId}`, { ordering: "per_resource" }).then((r) => {
      answered = true;
      return r;
    });
    // The switch waits for the create in progress before it answers.
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(answered).toBe(false);
    commit();
    await create;
    expect((await switched).statusCode).toBe(200);
    const delivery = await h.ctx.db
      .selectFrom("delivery")
      .select("resource_key")
      .where("event_id", "=", event.id)
      .executeTakeFirstOrThrow();
    expect(delivery.resource_key).toBe("appointment:apt_late");
  });
});
