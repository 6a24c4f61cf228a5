/**
 * Operational events: webhook.degraded, webhook.disabled, webhook.recovered
 * and delivery.exhausted, raised by real breaker changes and a real exhausted
 * schedule against real receivers, delivered to the business's other webhooks
 * that ask for them (filters apply), never to the webhook they are about, and
 * valid against their catalogued schemas.
 */
import { Value } from "@sinclair/typebox/value";
import { describe, expect, it } from "vitest";
import { EVENT_CATALOG } from "../src/domain/event-catalog.js";
import { dialects } from "./support/databases.js";
import { booking, until } from "./support/fixtures.js";
import type { Received, Receiver } from "./support/receiver.js";
import { serverWithWebhooks, WEBHOOKS } from "./support/webhook-server.js";

const APPOINTMENTS = "/dr/v1/business/appointments";
const OPERATIONAL = ["webhook.degraded", "webhook.disabled", "webhook.recovered", "delivery.exhausted"];

interface Payload {
  event: string;
  service: string;
  client_id: string;
  transaction_id: string;
  event_id: string;
  data: Record<string, unknown>;
}

const payloadOf = (request: Received) => JSON.parse(request.body) as Payload;
const eventsIn = (receiver: Receiver) => receiver.received.map(payloadOf);

/** The payload matches its event's catalogued schema. */
function expectValid(payload: Payload): void {
  const entry = EVENT_CATALOG.find((candidate) => candidate.name === payload.event);
  expect(entry, payload.event).toBeDefined();
  expect([...Value.Errors(entry?.schema as never, payload)].map((error) => error.message)).toEqual([]);
}

describe.each(dialects())("operational events on %s", (dialect) => {
  const webhook = serverWithWebhooks(dialect, {
    CAREHOOKS_RETRY_SCHEDULE: "100ms,100ms,100ms,100ms",
    CAREHOOKS_BREAKER_THRESHOLD: "2",
    CAREHOOKS_DISABLE_AFTER: "1h",
  });

  it("tells the other webhooks when one degrades, recovers and is disabled, never the one it is about", async () => {
    // The failing webhook asks for the operational events too: it must still never hear about itself.
    const partner = await webhook({
      event_names: ["appointment.created", "webhook.degraded", "webhook.recovered", "webhook.disabled"],
    });
    const { tenant } = partner;
    const monitor = await webhook({ event_names: OPERATIONAL }, tenant);
    const bystander = await webhook({ event_names: ["appointment.updated"] }, tenant);
    // A filter applies to operational events like any other: this one wants only disabling.
    const pager = await webhook({ event_names: OPERATIONAL, filter: { "data.state": "disabled" } }, tenant);

    let mode: "fail" | "ok" | "gone" = "fail";
    partner.receiver.answer = () => ({ status: mode === "fail" ? 500 : mode === "gone" ? 410 : 200 });
    await tenant.request("POST", APPOINTMENTS, booking);
    const named = (name: string) => (payload: Payload) => payload.event === name;
    const degraded = await until(() => eventsIn(monitor.receiver).find(named("webhook.degraded")), 10_000);
    expect(degraded.data).toMatchObject({ webhook_id: partner.id, state: "degraded", endpoint: partner.receiver.url });
    expect(degraded.data.reason).toMatch(/2 consecutive failures/);
    expect(degraded).toMatchObject({ service: "webhook", client_id: "carehooks", transaction_id: degraded.event_id });
    expectValid(degraded);

    mode = "ok";
    const recovered = await until(() => eventsIn(monitor.receiver).find(named("webhook.recovered")), 10_000);
    expect(recovered.data).toMatchObject({
      webhook_id: partner.id,
      state: "active",
      reason: null,
      failing_since: null,
    });
    expectValid(recovered);

    mode = "gone";
    await tenant.request("POST", APPOINTMENTS, booking);
    const disabled = await until(() => eventsIn(monitor.receiver).find(named("webhook.disabled")), 10_000);
    expect(disabled.data).toMatchObject({ webhook_id: partner.id, state: "disabled" });
    expect(disabled.data.reason).toMatch(/410/);
    expectValid(disabled);

    await until(() => pager.receiver.received.length >= 1, 10_000, "the pager's disabled event");
    expect(eventsIn(pager.receiver).map((payload) => payload.event)).toEqual(["webhook.disabled"]);
    expect(eventsIn(partner.receiver).filter((payload) => OPERATIONAL.includes(payload.event))).toEqual([]);
    expect(bystander.receiver.received).toEqual([]);

    // They are events of the business like any other: listed, and in the delivery log.
    const listed = await tenant.request("GET", "/notification/v1/connect/webhook/events?limit=100");
    expect(listed.statusCode, listed.body).toBe(200);
    const names = (listed.json().data as { event_name?: string; name?: string }[]).map(
      (event) => event.event_name ?? event.name,
    );
    expect(names).toEqual(expect.arrayContaining(["webhook.degraded", "webhook.recovered", "webhook.disabled"]));
    const log = await tenant.request("GET", `${WEBHOOKS}/${monitor.id}/deliveries`);
    expect((log.json().data as { event_name: string }[]).map((delivery) => delivery.event_name)).toEqual(
      expect.arrayContaining(["webhook.degraded", "webhook.recovered", "webhook.disabled"]),
    );
  });

  it("raises delivery.exhausted when a schedule runs out, but not for a delivery of delivery.exhausted", async () => {
    const dead = await webhook({ event_names: ["appointment.created"], retry_schedule: [] });
    const { tenant } = dead;
    dead.receiver.answer = () => ({ status: 502 });
    // A second dead webhook that asks for delivery.exhausted: its own failure to take one must not raise another.
    const deadMonitor = await webhook({ event_names: ["delivery.exhausted"], retry_schedule: [] }, tenant);
    deadMonitor.receiver.answer = () => ({ status: 500 });
    const monitor = await webhook({ event_names: ["delivery.exhausted"] }, tenant);

    await tenant.request("POST", APPOINTMENTS, booking);
    const exhausted = await until(() => eventsIn(monitor.receiver)[0], 10_000, "delivery.exhausted");
    expect(exhausted).toMatchObject({ event: "delivery.exhausted", service: "delivery" });
    expect(exhausted.data).toMatchObject({
      webhook_id: dead.id,
      event_name: "appointment.created",
      attempts: 1,
      last_status_code: 502,
    });
    expectValid(exhausted);
    const delivery = await tenant.request(
      "GET",
      `/notification/v1/connect/webhook/deliveries/${exhausted.data.delivery_id}`,
    );
    expect(delivery.json().data).toMatchObject({ status: "failed", subscription_id: dead.id });

    // The dead monitor got that event once, failed it, and nothing more came of it.
    await until(() => deadMonitor.receiver.received.length >= 1, 10_000, "the dead monitor's attempt");
    await new Promise((resolve) => setTimeout(resolve, 1000));
    expect(eventsIn(monitor.receiver).map((payload) => payload.event)).toEqual(["delivery.exhausted"]);
    expect(deadMonitor.receiver.received).toHaveLength(1);
  });
});
