/**
 * A webhook's attribute filter, custom headers, timeout and retry schedule,
 * end to end through a real receiver on both databases; how each is
 * validated; and how the dispatcher works out what it sends from them.
 */
import { describe, expect, it } from "vitest";
import { WebhookOptions } from "../src/delivery/webhook-options.js";
import { checkDeliverySettings } from "../src/domain/delivery-settings.js";
import { FILTER_FIELDS } from "../src/domain/event-catalog.js";
import { compileFilter } from "../src/domain/event-filter.js";
import { generateMasterKey, KeyBox } from "../src/domain/key-box.js";
import { decodeRequestMeta, keyIdOf } from "../src/domain/request-headers.js";
import { version } from "../src/version.js";
import { dialects } from "./support/databases.js";
import { booking, until } from "./support/fixtures.js";
import { type Hook, serverWithWebhooks, WEBHOOKS } from "./support/webhook-server.js";

const APPOINTMENTS = "/dr/v1/business/appointments";

const dataOf = (body: string) => (JSON.parse(body) as { data: Record<string, unknown> }).data;

async function deliveriesOf(hook: Hook): Promise<Record<string, unknown>[]> {
  const page = await hook.tenant.request("GET", `/notification/v1/connect/webhook/subscriptions/${hook.id}/deliveries`);
  expect(page.statusCode, page.body).toBe(200);
  return page.json().data;
}

describe.each(dialects())("webhook options on %s", (dialect) => {
  const webhook = serverWithWebhooks(dialect, {
    CAREHOOKS_RETRY_SCHEDULE: "5s,5s,5s",
    CAREHOOKS_REQUEST_TIMEOUT: "10s",
    CAREHOOKS_LEASE: "30s",
  });

  it("delivers only the events its filter matches, and PATCH changes or clears the filter", async () => {
    const filter = { "data.clinic_id": { $in: ["clinic-7", "clinic-9"] }, "data.action": { $neq: "modified" } };
    const hook = await webhook({ filter });
    // A second webhook of the same business without a filter gets everything: the filter is per webhook.
    const all = await webhook({}, hook.tenant);
    expect((await hook.tenant.request("GET", `${WEBHOOKS}/${hook.id}`)).json().data.filter).toEqual(filter);

    const book = async (clinic: string) => {
      const created = await hook.tenant.request("POST", APPOINTMENTS, { ...booking, clinic_id: clinic });
      expect(created.statusCode, created.body).toBe(201);
      return created.json().appointment_id as string;
    };
    const seven = await book("clinic-7");
    await book("clinic-8");
    const nine = await book("clinic-9");
    // modified: filtered out; cancelled: in.
    await hook.tenant.request("PATCH", `${APPOINTMENTS}/${seven}`, { notes: "moved" });
    await hook.tenant.request("POST", `${APPOINTMENTS}/${nine}/cancel`, { cancelled_by: "staff" });
    await until(() => all.receiver.received.length >= 5, 10_000, "the unfiltered webhook's five events");
    await until(() => hook.receiver.received.length >= 3, 10_000, "the filtered webhook's three events");
    // Both webhooks' deliveries are created in the same write: nothing more can still be coming.
    expect((await deliveriesOf(hook)).length).toBe(3);
    const got = hook.receiver.received.map((request) => dataOf(request.body));
    expect(got.map((data) => [data.clinic_id, data.action])).toEqual(
      expect.arrayContaining([
        ["clinic-7", "created"],
        ["clinic-9", "created"],
        ["clinic-9", "cancelled"],
      ]),
    );

    const patched = await hook.tenant.request("PATCH", `${WEBHOOKS}/${hook.id}`, {
      filter: { $or: [{ "data.status": "BK" }, { "data.partner_appointment_id": { $exists: true } }] },
    });
    expect(patched.statusCode, patched.body).toBe(200);
    await book("clinic-8");
    await until(() => hook.receiver.received.length >= 4, 10_000, "an event the new filter matches");
    const cleared = await hook.tenant.request("PATCH", `${WEBHOOKS}/${hook.id}`, { filter: null });
    expect(cleared.statusCode, cleared.body).toBe(200);
    expect((await hook.tenant.request("GET", `${WEBHOOKS}/${hook.id}`)).json().data.filter).toBeNull();
  });

  it("refuses a filter it cannot apply, naming the field or operator", async () => {
    const { tenant, id } = await webhook({});
    const refused = async (filter: unknown, pattern: RegExp) => {
      const response = await tenant.request("PATCH", `${WEBHOOKS}/${id}`, { filter });
      expect(response.statusCode, response.body).toBe(400);
      expect(response.json().error.code).toBe("INVALID_REQUEST");
      expect(response.json().error.message).toMatch(pattern);
    };
    await refused({ "data.diagnosis": "flu" }, /unknown field "data.diagnosis"/);
    await refused({ "data.clinic_id": { $regex: "^c" } }, /unknown operator \$regex/);
    await refused({ $xor: [] }, /unknown operator \$xor/);
    await refused({ "data.clinic_id": ["a", "b"] }, /use \$in/);
    await refused({ "data.clinic_id": { $in: [] } }, /list of 1 to 100 values/);
    await refused({ "data.clinic_id": { $exists: "yes" } }, /true or false/);
    await refused({}, /at least one condition/);
    let deep: Record<string, unknown> = { "data.action": "created" };
    for (let i = 0; i < 7; i++) deep = { $not: deep };
    await refused(deep, /deeper than 5/);
    await refused({ $or: Array.from({ length: 60 }, (_, i) => ({ "data.doctor_id": `d${i}` })) }, /more than 50/);
    await refused({ "data.clinic_id": { $in: Array.from({ length: 100 }, () => "x".repeat(50)) } }, /4096 bytes/);
    // Bytes, not characters: 60 × 30 three-byte characters are 5 400 bytes in under 2 000 characters.
    await refused({ "data.clinic_id": { $in: Array.from({ length: 60 }, () => "界".repeat(30)) } }, /4096 bytes/);
  });

  it("sends its custom headers, and shows credentials masked in reads and the attempt log", async () => {
    const headers = { "X-Gateway-Token": "gw-secret-123", "x-clinic-region": "south" };
    const hook = await webhook({ headers });
    const read = (await hook.tenant.request("GET", `${WEBHOOKS}/${hook.id}`)).json().data;
    // Names only: which header is a credential cannot be told from its name (x-clinic-region could be one).
    expect(read.headers).toEqual({ "x-gateway-token": "********", "x-clinic-region": "********" });
    await hook.tenant.request("POST", APPOINTMENTS, booking);
    const [request] = await until(() => hook.receiver.received.length > 0 && hook.receiver.received, 10_000);
    expect(request?.headers["x-gateway-token"]).toBe("gw-secret-123");
    expect(request?.headers["x-clinic-region"]).toBe("south");
    expect(request?.headers["content-type"]).toBe("application/json");
    expect(request?.headers["webhook-id"]).toMatch(/^evt_/);

    const [delivery] = await until(async () => {
      const rows = await deliveriesOf(hook);
      return rows[0]?.status === "succeeded" && rows;
    }, 10_000);
    const detail = await hook.tenant.request("GET", `/notification/v1/connect/webhook/deliveries/${delivery?.id}`);
    const logged = detail.json().data.attempts[0].request_headers;
    expect(logged["x-gateway-token"]).toBe("********");
    expect(logged["x-clinic-region"]).toBe("********");
    expect(detail.body).not.toContain("gw-secret-123");

    const refused = async (body: unknown, pattern: RegExp) => {
      const response = await hook.tenant.request("PATCH", `${WEBHOOKS}/${hook.id}`, { headers: body });
      expect(response.statusCode, response.body).toBe(400);
      expect(response.json().error.message).toMatch(pattern);
    };
    await refused({ "Content-Type": "text/plain" }, /set by carehooks/);
    await refused({ "webhook-signature": "v1,x" }, /set by carehooks/);
    await refused({ "eka-webhook-signature": "x" }, /set by carehooks/);
    await refused({ "transfer-encoding": "chunked" }, /belongs to the connection/);
    await refused({ host: "evil.example" }, /belongs to the connection/);
    await refused({ "bad name": "x" }, /not a valid HTTP header name/);
    await refused({ "x-a": "line\r\nx-injected: 1" }, /printable ASCII/);
    // The JSON parser already refuses a __proto__ key; the header check would too.
    await refused(JSON.parse('{"__proto__": "x"}'), /not valid JSON|cannot be stored/);
    await refused({ "x-gateway-token": "********" }, /send its real value/);
    await refused(Object.fromEntries(Array.from({ length: 21 }, (_, i) => [`x-h${i}`, "v"])), /at most 20/);
    const cleared = await hook.tenant.request("PATCH", `${WEBHOOKS}/${hook.id}`, { headers: null });
    expect(cleared.statusCode).toBe(200);
    expect((await hook.tenant.request("GET", `${WEBHOOKS}/${hook.id}`)).json().data.headers).toBeNull();
  });

  it("times an attempt out after the webhook's own timeout, not the server's", async () => {
    const hook = await webhook({ timeout: 1 });
    expect((await hook.tenant.request("GET", `${WEBHOOKS}/${hook.id}`)).json().data.timeout).toBe(1);
    hook.receiver.answer = () => ({ status: 200, delayMs: 4000 });
    await hook.tenant.request("POST", APPOINTMENTS, booking);
    const [delivery] = await until(async () => {
      const rows = await deliveriesOf(hook);
      return Number(rows[0]?.attempts) >= 1 && rows;
    }, 10_000);
    expect(delivery?.last_error).toMatch(/^timeout/);
    const detail = await hook.tenant.request("GET", `/notification/v1/connect/webhook/deliveries/${delivery?.id}`);
    const attempt = detail.json().data.attempts[0];
    // The server's timeout is 10 s: a 1 s timeout ends the attempt well before the receiver's 4 s answer.
    expect(attempt.duration_ms).toBeGreaterThanOrEqual(900);
    expect(attempt.duration_ms).toBeLessThan(3000);
  });

  it("retries on the webhook's own schedule; an empty schedule sends once", async () => {
    const hook = await webhook({ retry_schedule: [1, 1] });
    hook.receiver.answer = () => ({ status: 500 });
    await hook.tenant.request("POST", APPOINTMENTS, booking);
    // The server's schedule waits 5 s between attempts; this webhook's 1 s (±20 %), twice, then it is exhausted.
    const [delivery] = await until(async () => {
      const rows = await deliveriesOf(hook);
      return rows[0]?.status === "failed" && rows;
    }, 10_000);
    expect(delivery?.attempts).toBe(3);
    const starts = hook.receiver.received.map((request) => request.at);
    expect(starts).toHaveLength(3);
    for (let i = 1; i < starts.length; i++) {
      const gap = (starts[i] as number) - (starts[i - 1] as number);
      expect(gap).toBeGreaterThanOrEqual(750);
      expect(gap).toBeLessThan(4000);
    }

    const once = await webhook({ retry_schedule: [] });
    once.receiver.answer = () => ({ status: 500 });
    await once.tenant.request("POST", APPOINTMENTS, booking);
    await until(async () => (await deliveriesOf(once))[0]?.status === "failed", 10_000, "failed after one attempt");
    expect(once.receiver.received).toHaveLength(1);
  });

  it("validates timeout and retry_schedule against the server's own settings", async () => {
    const { tenant, id } = await webhook({});
    const refused = async (body: Record<string, unknown>, pattern: RegExp) => {
      const response = await tenant.request("PATCH", `${WEBHOOKS}/${id}`, body);
      expect(response.statusCode, response.body).toBe(400);
      expect(response.json().error.message).toMatch(pattern);
    };
    await refused({ timeout: 11 }, /timeout must be a whole number from 1 to 10/);
    await refused({ timeout: 0 }, /timeout/);
    await refused({ retry_schedule: [1, 1, 1, 1] }, /at most 3 delays/);
    await refused({ retry_schedule: [0] }, /retry_schedule\[0\] must be a whole number of seconds from 1 to 86400/);
    await refused({ retry_schedule: [1.5] }, /retry_schedule/);
    const changed = await tenant.request("PATCH", `${WEBHOOKS}/${id}`, { timeout: 3, retry_schedule: [2, 60, 3600] });
    expect(changed.statusCode, changed.body).toBe(200);
    const read = async () => (await tenant.request("GET", `${WEBHOOKS}/${id}`)).json().data;
    expect(await read()).toMatchObject({ timeout: 3, retry_schedule: [2, 60, 3600] });
    await tenant.request("PATCH", `${WEBHOOKS}/${id}`, { timeout: null, retry_schedule: null });
    expect(await read()).toMatchObject({ timeout: null, retry_schedule: null });
  });
});

describe("the filter language", () => {
  const match = (filter: unknown, payload: unknown) => compileFilter(filter, FILTER_FIELDS)(payload);
  const event = { service: "appointment", data: { clinic_id: "c7", action: "created", partner_appointment_id: null } };

  it("gives each operator its meaning", () => {
    expect(match({ "data.clinic_id": "c7" }, event)).toBe(true);
    expect(match({ "data.clinic_id": { $eq: "c8" } }, event)).toBe(false);
    expect(match({ "data.clinic_id": { $neq: "c8" } }, event)).toBe(true);
    expect(match({ "data.clinic_id": { $in: ["c1", "c7"] } }, event)).toBe(true);
    expect(match({ "data.clinic_id": { $nin: ["c1", "c7"] } }, event)).toBe(false);
    // $exists: present and not null.
    expect(match({ "data.partner_appointment_id": { $exists: true } }, event)).toBe(false);
    expect(match({ "data.partner_appointment_id": { $exists: false } }, event)).toBe(true);
    expect(match({ "data.partner_appointment_id": null }, event)).toBe(true);
    // A field the event does not have (a prescription's, on an appointment) equals nothing and differs from everything.
    expect(match({ "data.prescription_id": "rx" }, event)).toBe(false);
    expect(match({ "data.prescription_id": { $neq: "rx" } }, event)).toBe(true);
    // Every key must hold; $or any; $not none.
    expect(match({ service: "appointment", "data.action": "modified" }, event)).toBe(false);
    expect(match({ $or: [{ "data.action": "modified" }, { "data.clinic_id": "c7" }] }, event)).toBe(true);
    expect(match({ $and: [{ "data.action": "created" }, { "data.clinic_id": "c7" }] }, event)).toBe(true);
    expect(match({ $not: { "data.action": "created" } }, event)).toBe(false);
    expect(match({ "data.clinic_id": { $neq: "c1", $nin: ["c2"] } }, event)).toBe(true);
  });
});

describe("a webhook's timeout against the server's", () => {
  const server = { maxInFlightPerEndpoint: 10, retrySchedule: [5000] };

  it("is never above it, and cannot be set when the server's is under a second", () => {
    expect(checkDeliverySettings({ timeout: 2 }, { ...server, requestTimeout: 2500 })).toEqual({ timeout_ms: 2000 });
    expect(() => checkDeliverySettings({ timeout: 3 }, { ...server, requestTimeout: 2500 })).toThrow(/from 1 to 2/);
    expect(() => checkDeliverySettings({ timeout: 1 }, { ...server, requestTimeout: 500 })).toThrow(/under one second/);
    expect(checkDeliverySettings({ timeout: null }, { ...server, requestTimeout: 500 })).toEqual({ timeout_ms: null });
  });
});

describe("a webhook's send options, as the dispatcher works them out", () => {
  const keyBox = new KeyBox(generateMasterKey());
  const current = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
  const previous = "an-older-key-0123456789";
  const now = Date.now();
  const overlapEnds = now + 60_000;
  const stored = {
    id: "wh_1",
    signing_key: keyBox.seal(current),
    previous_signing_key: keyBox.seal(previous),
    previous_key_expires_at: overlapEnds,
    headers: keyBox.seal(JSON.stringify({ "x-team": "billing" })),
    retry_schedule: "[1000,5000]",
  };

  it("signs with the replaced key too until its overlap ends, and names the keys in the attempt log's meta", () => {
    const options = new WebhookOptions(keyBox, [60_000]);
    const sent = options.of(stored, now);
    expect([sent.custom, sent.schedule]).toEqual([{ "x-team": "billing" }, [1000, 5000]]);
    const during = sent.signingAt(overlapEnds - 1);
    const after = sent.signingAt(overlapEnds);
    expect([during.keys, after.keys]).toEqual([[current, previous], [current]]);
    const meta = (signing: { meta: string }) => decodeRequestMeta(signing.meta);
    expect(meta(during).keyIds).toEqual([keyIdOf(current, keyBox), keyIdOf(previous, keyBox)]);
    expect(meta(after)).toEqual({ version, keyIds: [keyIdOf(current, keyBox)], headerNames: ["x-team"] });
  });

  it("is worked out once per stored value, and again when any one of them changes", () => {
    const options = new WebhookOptions(keyBox, [60_000]);
    const first = options.of(stored, now);
    expect(options.of({ ...stored }, now)).toBe(first);
    // The end of the overlap given as text is the same value.
    expect(options.of({ ...stored, previous_key_expires_at: String(overlapEnds) }, now)).toBe(first);
    // Each change against the options of `stored`, worked out just before.
    const changed = (field: Partial<typeof stored>) => {
      options.of(stored, now);
      return options.of({ ...stored, ...field }, now);
    };
    expect(changed({ signing_key: keyBox.seal("a-new-key-abcdefghijkl") }).signingAt(now).keys).toEqual([
      "a-new-key-abcdefghijkl",
      previous,
    ]);
    expect(changed({ previous_signing_key: keyBox.seal("another-old-key-0123") }).signingAt(now).keys).toEqual([
      current,
      "another-old-key-0123",
    ]);
    expect(changed({ previous_key_expires_at: now - 1 }).signingAt(now).keys).toEqual([current]);
    expect(changed({ headers: keyBox.seal(JSON.stringify({ "x-other": "1" })) }).custom).toEqual({ "x-other": "1" });
    expect(changed({ retry_schedule: "[7]" }).schedule).toEqual([7]);
    expect(changed({ retry_schedule: null }).schedule).toEqual([60_000]);
    const unsigned = changed({ signing_key: null, previous_signing_key: null, headers: null });
    expect([unsigned.signingAt(now).keys, unsigned.custom]).toEqual([[], {}]);
    // An overlap that had ended when worked out: the replaced key is not even opened.
    expect(changed({ previous_signing_key: "not sealed", previous_key_expires_at: now }).signingAt(now).keys).toEqual([
      current,
    ]);
  });

  it("throws for a key it cannot open; the retry schedule is still the webhook's, or the server's for a damaged one", () => {
    const options = new WebhookOptions(keyBox, [60_000]);
    const damaged = { ...stored, signing_key: "not sealed" };
    expect(() => options.of(damaged, now)).toThrow();
    expect(options.scheduleOf(damaged)).toEqual([1000, 5000]);
    for (const schedule of ["not json", '{"a":1}', '["1s"]']) {
      expect(options.scheduleOf({ ...stored, retry_schedule: schedule })).toEqual([60_000]);
      expect(options.of({ ...stored, retry_schedule: schedule }, now).schedule).toEqual([60_000]);
    }
  });
});
