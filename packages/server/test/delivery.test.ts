import { createHmac, timingSafeEqual } from "node:crypto";
import { Webhook as StandardWebhook } from "standardwebhooks";
import { Webhook as SvixWebhook } from "svix";
import { describe, expect, it } from "vitest";
import { keyIdOf } from "../src/domain/request-headers.js";
import { dialects } from "./support/databases.js";
import { booking, until } from "./support/fixtures.js";
import { deliveringHarness, type Tenant, untilFailed } from "./support/harness.js";
import type { Receiver } from "./support/receiver.js";

const WEBHOOKS = "/notification/v1/connect/webhook/subscriptions";
const APPOINTMENTS = "/dr/v1/business/appointments";
const WHSEC = `whsec_${Buffer.alloc(32, 9).toString("base64")}`;

/** An Eka-style verifier written from the public description, independent of carehooks' signer. */
function ekaVerify(body: string, header: string, key: string): boolean {
  const parts = header.split(",").map((part) => part.split("="));
  const t = parts.find(([k]) => k === "t")?.[1];
  const expected = createHmac("sha256", key).update(`${t}.${body}`).digest();
  return parts
    .filter(([k]) => k === "v1")
    .some(([, hex]) => {
      const given = Buffer.from(hex ?? "", "hex");
      return given.length === expected.length && timingSafeEqual(given, expected);
    });
}

describe.each(dialects())("delivery on %s", (dialect) => {
  const run = deliveringHarness(dialect, { CAREHOOKS_BREAKER_THRESHOLD: "100", CAREHOOKS_KEY_OVERLAP: "1h" });

  async function setup(
    body: Record<string, unknown> = {},
  ): Promise<{ tenant: Tenant; receiver: Receiver; webhookId: string }> {
    const receiver = await run.receiver();
    const tenant = await run.h.tenant();
    const created = await tenant.request("POST", WEBHOOKS, {
      endpoint: receiver.url,
      event_names: ["appointment.created", "appointment.updated"],
      ...body,
    });
    expect(created.statusCode, created.body).toBe(201);
    return { tenant, receiver, webhookId: created.json().id };
  }

  const deliveryOf = async (tenant: Tenant, webhookId: string) => {
    const list = (await tenant.request("GET", `${WEBHOOKS}/${webhookId}/deliveries`)).json();
    return list.data[0] as {
      id: string;
      status: string;
      attempts: number;
      last_status_code: number | null;
      last_error: string | null;
      next_attempt_at: string | null;
    };
  };
  const detailOf = async (tenant: Tenant, id: string) =>
    (await tenant.request("GET", `/notification/v1/connect/webhook/deliveries/${id}`)).json().data;

  it("signs so that Eka-style, standardwebhooks and svix verifiers all accept, with the stored body byte for byte", async () => {
    const { tenant, receiver } = await setup({ signing_key: WHSEC });
    const appointment = (await tenant.request("POST", APPOINTMENTS, booking)).json();
    const [request] = await receiver.waitFor(1);
    const headers = request?.headers ?? {};
    expect(request?.method).toBe("POST");
    expect(headers["content-type"]).toBe("application/json");
    expect(headers["user-agent"]).toMatch(/^carehooks\//);
    const event = await run.h.ctx.db
      .selectFrom("event")
      .selectAll()
      .where("resource_id", "=", appointment.appointment_id)
      .executeTakeFirstOrThrow();
    expect(request?.body).toBe(event.payload);
    expect(headers["webhook-id"]).toBe(event.id);
    expect(JSON.parse(request?.body as string).event_id).toBe(event.id);
    const t = headers["webhook-timestamp"] as string;
    expect(Math.abs(Number(t) - Date.now() / 1000)).toBeLessThan(30);
    expect(headers["eka-webhook-signature"]).toMatch(new RegExp(`^t=${t},v1=[0-9a-f]{64}$`));
    expect(ekaVerify(request?.body as string, headers["eka-webhook-signature"] as string, WHSEC)).toBe(true);
    expect(ekaVerify(request?.body as string, headers["eka-webhook-signature"] as string, `${WHSEC}x`)).toBe(false);
    const plain = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k, String(v)]));
    expect(() => new StandardWebhook(WHSEC).verify(request?.body as string, plain)).not.toThrow();
    expect(() => new SvixWebhook(WHSEC).verify(request?.body as string, plain)).not.toThrow();
    expect(() => new SvixWebhook(WHSEC).verify(`${request?.body} `, plain)).toThrow();
  });

  it("sends unsigned, but with webhook-id and webhook-timestamp, when there is no key", async () => {
    const { tenant, receiver } = await setup();
    await tenant.request("POST", APPOINTMENTS, booking);
    const [request] = await receiver.waitFor(1);
    expect(request?.headers["webhook-id"]).toMatch(/^evt_/);
    expect(request?.headers["webhook-timestamp"]).toMatch(/^\d+$/);
    expect(request?.headers["eka-webhook-signature"]).toBeUndefined();
    expect(request?.headers["webhook-signature"]).toBeUndefined();
  });

  it("retries a 500 on the schedule with the same body, then succeeds, logging every attempt", async () => {
    const { tenant, receiver, webhookId } = await setup({ signing_key: "a-plain-signing-key-123" });
    receiver.answer = (_request, index) => (index < 2 ? { status: 500, body: "boom" } : { status: 204 });
    await tenant.request("POST", APPOINTMENTS, booking);
    const requests = await receiver.waitFor(3);
    expect(new Set(requests.map((r) => r.body)).size).toBe(1);
    expect(new Set(requests.map((r) => r.headers["webhook-id"])).size).toBe(1);
    expect(requests[1]!.at - requests[0]!.at).toBeGreaterThanOrEqual(70);
    for (const r of requests)
      expect(ekaVerify(r.body, r.headers["eka-webhook-signature"] as string, "a-plain-signing-key-123")).toBe(true);
    const delivery = await until(async () => {
      const d = await deliveryOf(tenant, webhookId);
      return d.status === "succeeded" ? d : undefined;
    });
    expect(delivery).toMatchObject({ attempts: 3, last_status_code: 204, last_error: null, next_attempt_at: null });
    const detail = await detailOf(tenant, delivery.id);
    expect(detail.attempts.map((a: { response_status: number }) => a.response_status)).toEqual([500, 500, 204]);
    expect(detail.attempts[0]).toMatchObject({ n: 1, response_body: "boom", error: null });
    expect(detail.attempts[0].request_headers["webhook-id"]).toBe(requests[0]?.headers["webhook-id"]);
  });

  it("records an answer whose body holds a NUL byte (PostgreSQL text cannot) and goes on delivering", async () => {
    const { tenant, receiver, webhookId } = await setup();
    receiver.answer = (_request, index) => (index === 0 ? { status: 500, body: "bad\u0000byte" } : { status: 200 });
    await tenant.request("POST", APPOINTMENTS, booking);
    await receiver.waitFor(2);
    const delivery = await until(async () => {
      const d = await deliveryOf(tenant, webhookId);
      return d.status === "succeeded" ? d : undefined;
    });
    const detail = await detailOf(tenant, delivery.id);
    expect(detail.attempts[0]).toMatchObject({ n: 1, response_status: 500, response_body: "bad\uFFFDbyte" });
    // The outcomes after it are written too.
    await tenant.request("POST", APPOINTMENTS, booking);
    await receiver.waitFor(3);
    await until(async () => {
      const list = (await tenant.request("GET", `${WEBHOOKS}/${webhookId}/deliveries`)).json();
      return list.data.every((d: { status: string }) => d.status === "succeeded") && list.data.length === 2;
    });
  });

  it("gives up after the last retry and marks the delivery failed", async () => {
    const { tenant, receiver, webhookId } = await setup();
    receiver.answer = () => ({ status: 503, body: "down" });
    await tenant.request("POST", APPOINTMENTS, booking);
    await receiver.waitFor(4);
    const delivery = await until(async () => {
      const d = await deliveryOf(tenant, webhookId);
      return d.status === "failed" ? d : undefined;
    });
    expect(delivery.attempts).toBe(4);
    expect(delivery.last_error).toMatch(/HTTP 503; gave up after 4 attempts/);
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(receiver.received).toHaveLength(4);
  });

  it.each([
    ["a timeout", { delayMs: 1500 }, /timeout/],
    ["a connection reset", { reset: true }, /connection_reset/],
    ["a redirect, never followed", { status: 302, headers: { location: "/elsewhere" } }, /HTTP 302/],
  ])("treats %s as a failure to retry", async (_name, answer, error) => {
    const { tenant, receiver, webhookId } = await setup();
    receiver.answer = (_r, index) => (index === 0 ? answer : { status: 200 });
    await tenant.request("POST", APPOINTMENTS, booking);
    await receiver.waitFor(2, 15_000);
    const delivery = await until(async () => {
      const d = await deliveryOf(tenant, webhookId);
      return d.status === "succeeded" ? d : undefined;
    });
    const detail = await detailOf(tenant, delivery.id);
    const first = detail.attempts[0];
    expect(`${first.error ?? ""} HTTP ${first.response_status}`).toMatch(error);
    expect(receiver.received.every((r) => r.path === "/hook")).toBe(true);
  });

  it("disables the webhook on 410 Gone and cancels what was queued for it", async () => {
    const { tenant, receiver, webhookId } = await setup();
    receiver.answer = () => ({ status: 410 });
    await tenant.request("POST", APPOINTMENTS, booking);
    await receiver.waitFor(1);
    const webhook = await until(async () => {
      const w = (await tenant.request("GET", `${WEBHOOKS}/${webhookId}`)).json().data;
      return w.state === "disabled" ? w : undefined;
    });
    expect(webhook.state_reason).toMatch(/410/);
    expect((await deliveryOf(tenant, webhookId)).status).toBe("failed");
    await tenant.request("POST", APPOINTMENTS, booking);
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect(receiver.received).toHaveLength(1);
  });

  it("honours Retry-After on 429 within [delay, 2 × delay]", async () => {
    const { tenant, receiver, webhookId } = await setup();
    receiver.answer = (_r, index) => (index === 0 ? { status: 429, headers: { "retry-after": "1" } } : { status: 200 });
    await tenant.request("POST", APPOINTMENTS, booking);
    const requests = await receiver.waitFor(2);
    // The schedule's first delay is 100 ms ± 20 %, so 1 s is clamped to at most 2 × 120 ms.
    const gap = requests[1]!.at - requests[0]!.at;
    expect(gap).toBeGreaterThanOrEqual(70);
    expect(gap).toBeLessThan(900);
    await until(async () => ((await deliveryOf(tenant, webhookId)).status === "succeeded" ? true : undefined));
  });

  it("signs with the new and the previous key during the overlap, and only the new one once it is expired", async () => {
    const { tenant, receiver, webhookId } = await setup({ signing_key: "the-first-signing-key" });
    await tenant.request("PATCH", `${WEBHOOKS}/${webhookId}`, { signing_key: "the-second-signing-key" });
    await tenant.request("POST", APPOINTMENTS, booking);
    const [during] = await receiver.waitFor(1);
    const entries = (during!.headers["eka-webhook-signature"] as string).split(",").filter((p) => p.startsWith("v1="));
    expect(entries).toHaveLength(2);
    const t = (during!.headers["webhook-timestamp"] as string) ?? "";
    const mac = (key: string) => createHmac("sha256", key).update(`${t}.${during!.body}`).digest("hex");
    expect(entries).toEqual([`v1=${mac("the-second-signing-key")}`, `v1=${mac("the-first-signing-key")}`]);
    expect((during!.headers["webhook-signature"] as string).split(" ")).toHaveLength(2);

    await tenant.request("PATCH", `${WEBHOOKS}/${webhookId}`, { expire_previous_key: true });
    await tenant.request("POST", APPOINTMENTS, booking);
    const [, after] = await receiver.waitFor(2);
    expect((after!.headers["eka-webhook-signature"] as string).split(",").filter((p) => p.startsWith("v1="))).toEqual([
      `v1=${createHmac("sha256", "the-second-signing-key").update(`${after!.headers["webhook-timestamp"]}.${after!.body}`).digest("hex")}`,
    ]);
  });

  it("sends nothing with a key it cannot open: the attempt is recorded as such and retried on the webhook's own schedule", async () => {
    const { tenant, receiver, webhookId } = await setup({
      signing_key: "a-key-to-damage-0123",
      retry_schedule: [60_000],
    });
    await run.h.ctx.db
      .updateTable("subscription")
      .set({ signing_key: "v1.damaged.row" })
      .where("id", "=", webhookId)
      .execute();
    const before = Date.now();
    await tenant.request("POST", APPOINTMENTS, booking);
    const delivery = await until(async () => {
      const d = await deliveryOf(tenant, webhookId);
      return d?.attempts === 1 ? d : undefined;
    });
    expect(delivery.status).toBe("pending");
    expect(delivery.last_error).toMatch(/cannot sign/);
    // The webhook's 60 s, not the server's 100 ms (± 20 %).
    expect(Date.parse(delivery.next_attempt_at as string) - before).toBeGreaterThan(40_000);
    const [attempt] = (await detailOf(tenant, delivery.id)).attempts;
    expect(attempt).toMatchObject({ n: 1, response_status: null, error: expect.stringMatching(/cannot sign/) });
    const row = await run.h.ctx.db
      .selectFrom("attempt")
      .select("request_meta")
      .where("delivery_id", "=", delivery.id)
      .executeTakeFirstOrThrow();
    expect(row.request_meta).toBeNull();
    expect(receiver.received).toHaveLength(0);
  });

  it("logs the headers each attempt was sent with, rebuilt from a few stored bytes, naming a key rotated out since", async () => {
    const { tenant, receiver, webhookId } = await setup({
      signing_key: "the-first-signing-key",
      headers: { "x-gateway-token": "gw-secret-123" },
    });
    await tenant.request("PATCH", `${WEBHOOKS}/${webhookId}`, { signing_key: "the-second-signing-key" });
    await tenant.request("POST", APPOINTMENTS, booking);
    const [request] = await receiver.waitFor(1);
    const sent = request?.headers ?? {};
    const delivery = await until(async () => {
      const d = await deliveryOf(tenant, webhookId);
      return d.status === "succeeded" ? d : undefined;
    });
    const logged = async () =>
      (await detailOf(tenant, delivery.id)).attempts[0].request_headers as Record<string, string>;
    const own = [
      "content-type",
      "user-agent",
      "webhook-id",
      "webhook-timestamp",
      "webhook-signature",
      "eka-webhook-signature",
    ];
    expect(await logged()).toEqual({
      "x-gateway-token": "********",
      ...Object.fromEntries(own.map((name) => [name, sent[name]])),
    });
    const row = await run.h.ctx.db
      .selectFrom("attempt")
      .select(["request_headers", "request_meta"])
      .where("delivery_id", "=", delivery.id)
      .executeTakeFirstOrThrow();
    expect(row.request_headers).toBe("{}");
    expect(row.request_meta?.length).toBeLessThan(120);
    expect(row.request_meta).not.toContain("gw-secret-123");

    // A third key: the webhook no longer holds the first, so its signature's place names it.
    await tenant.request("PATCH", `${WEBHOOKS}/${webhookId}`, { signing_key: "the-third-signing-key" });
    const gone = `(key ${keyIdOf("the-first-signing-key", run.h.ctx.keyBox)} no longer held)`;
    const [second] = (sent["webhook-signature"] as string).split(" ");
    const [t, secondMac] = (sent["eka-webhook-signature"] as string).split(",");
    const after = await logged();
    expect(after["webhook-signature"]).toBe(`${second} v1,${gone}`);
    expect(after["eka-webhook-signature"]).toBe(`${t},${secondMac},v1=${gone}`);
    expect(after["webhook-id"]).toBe(sent["webhook-id"]);
    // A key that cannot be opened (a damaged row, another master key) is not held: the log still reads.
    await run.h.ctx.db
      .updateTable("subscription")
      .set({ signing_key: "v1.damaged.row", previous_signing_key: "v1.damaged.row" })
      .where("id", "=", webhookId)
      .execute();
    const damaged = await logged();
    expect(damaged["webhook-signature"]).toMatch(/^v1,\(key hmac_[0-9a-f]{16} no longer held\) v1,\(key hmac_/);

    // An attempt logged before request_meta was kept shows the headers it stored.
    await run.h.ctx.db
      .insertInto("attempt")
      .values({
        id: "att_zzzzzzzzzzzzzzzzzzzzzzzzzz",
        delivery_id: delivery.id,
        n: 2,
        started_at: Date.now(),
        duration_ms: 3,
        request_headers: JSON.stringify({ "webhook-id": "evt_stored" }),
        request_meta: null,
        response_status: 200,
        response_body: "",
        error: null,
      })
      .execute();
    const [, legacy] = (await detailOf(tenant, delivery.id)).attempts;
    expect(legacy.request_headers).toEqual({ "webhook-id": "evt_stored" });
  });

  it("resends a delivered event, sends a test event, and recovers failed ones as a task", async () => {
    const { tenant, receiver, webhookId } = await setup();
    await tenant.request("POST", APPOINTMENTS, booking);
    await receiver.waitFor(1);
    const delivered = await until(async () => {
      const d = await deliveryOf(tenant, webhookId);
      return d.status === "succeeded" ? d : undefined;
    });
    const resent = await tenant.request("POST", `/notification/v1/connect/webhook/deliveries/${delivered.id}/resend`);
    expect(resent.statusCode).toBe(202);
    const [first, second] = await receiver.waitFor(2);
    expect(second?.body).toBe(first?.body);

    const test = await tenant.request("POST", `${WEBHOOKS}/${webhookId}/test`, { event_name: "appointment.updated" });
    expect(test.statusCode, test.body).toBe(202);
    const [, , sample] = await receiver.waitFor(3);
    expect(JSON.parse(sample?.body as string)).toMatchObject({
      event: "appointment.updated",
      business_id: tenant.businessId,
    });

    receiver.answer = () => ({ status: 500 });
    const since = new Date().toISOString();
    await tenant.request("POST", APPOINTMENTS, booking);
    await tenant.request("POST", APPOINTMENTS, booking);
    await untilFailed(tenant, webhookId, 2);
    receiver.answer = () => ({ status: 200 });
    const recover = await tenant.request("POST", `${WEBHOOKS}/${webhookId}/recover`, { since });
    expect(recover.statusCode, recover.body).toBe(202);
    const task = recover.json().data;
    expect(task).toMatchObject({ kind: "recover", total: 2 });
    await until(async () => {
      const t = (await tenant.request("GET", `/notification/v1/connect/webhook/tasks/${task.id}`)).json().data;
      return t.state === "succeeded" && t.done === 2 ? t : undefined;
    });
    await until(
      async () => {
        const list = (await tenant.request("GET", `${WEBHOOKS}/${webhookId}/deliveries?status=succeeded`)).json();
        return list.data.length === 4 ? true : undefined;
      },
      15_000,
      "recovered deliveries to succeed",
    );
    expect(
      (await tenant.request("POST", `/notification/v1/connect/webhook/deliveries/${delivered.id}/resend`)).statusCode,
    ).toBe(202);
  });

  it("cancels queued deliveries when the webhook is deleted", async () => {
    const { tenant, receiver, webhookId } = await setup();
    receiver.answer = () => ({ status: 500 });
    await tenant.request("POST", APPOINTMENTS, booking);
    await receiver.waitFor(1);
    await tenant.request("DELETE", `${WEBHOOKS}/${webhookId}`);
    const row = await until(async () => {
      const d = await run.h.ctx.db
        .selectFrom("delivery")
        .selectAll()
        .where("subscription_id", "=", webhookId)
        .executeTakeFirst();
      return d?.status === "cancelled" ? d : undefined;
    });
    expect(row.status).toBe("cancelled");
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(receiver.received.length).toBeLessThanOrEqual(2);
  });

  it("lists events with payloads and reports the queue on /readyz", async () => {
    const { tenant } = await setup();
    const appointment = (await tenant.request("POST", APPOINTMENTS, booking)).json();
    const events = (
      await tenant.request("GET", `/notification/v1/connect/webhook/events?resource_id=${appointment.appointment_id}`)
    ).json();
    expect(events.data).toHaveLength(1);
    expect(events.data[0].payload.data.appointment_id).toBe(appointment.appointment_id);
    const one = await tenant.request("GET", `/notification/v1/connect/webhook/events/${events.data[0].id}`);
    expect(one.json().data.event_name).toBe("appointment.created");
    const ready = (await run.h.app.inject({ method: "GET", url: "/readyz" })).json();
    expect(ready.queue).toEqual(
      expect.objectContaining({ pending: expect.any(Number), oldest_due_ms: expect.any(Number) }),
    );
  });

  it("exposes attempts, the queue and requests on /metrics", async () => {
    const { tenant, receiver } = await setup();
    await tenant.request("POST", APPOINTMENTS, booking);
    await receiver.waitFor(1);
    // The attempt is counted once its completion is written.
    let text = "";
    await until(async () => {
      text = (await run.h.app.inject({ method: "GET", url: "/metrics" })).body;
      return /^carehooks_delivery_attempts_total\{outcome="succeeded"\} [1-9]/m.test(text);
    });
    expect(text).toMatch(/^carehooks_queue\{state="pending"\} \d+$/m);
    expect(text).toMatch(/^carehooks_http_requests_total\{.*route="\/dr\/v1\/business\/appointments".*\} [1-9]/m);
  });
});
