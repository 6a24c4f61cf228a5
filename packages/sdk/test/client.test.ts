/**
 * The API client against a real carehooks: the built binary runs as a child
 * process on a temporary SQLite data directory, with 2-second access tokens so
 * that refresh happens within the test.
 */
import { randomBytes } from "node:crypto";
import type http from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  CarehooksApiError,
  CarehooksClient,
  type CarehooksClientOptions,
  type CarehooksEvent,
  Deduplicator,
  isAppointmentCreated,
  nodeHandler,
} from "../src/index.js";
import { type ApiClientCredentials, type RunningServer, startCarehooks } from "./support/carehooks-server.js";
import { listenLocally } from "./support/local-server.js";

let server: RunningServer;
let creds: ApiClientCredentials;
const closers: (() => Promise<void>)[] = [];

beforeAll(async () => {
  server = await startCarehooks({
    CAREHOOKS_ACCESS_TOKEN_TTL: "2s",
    CAREHOOKS_ALLOW_HTTP: "true",
    CAREHOOKS_ALLOWED_TARGETS: "127.0.0.1/32",
    CAREHOOKS_LOGIN_RATE_LIMIT: "10000",
  });
  creds = await server.createClient("SDK Test Clinic");
});

afterAll(async () => {
  while (closers.length > 0) await closers.pop()!();
  await server?.stop();
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface Call {
  method: string;
  path: string;
  status: number;
  authorization: string | undefined;
}

/**
 * A client whose fetch records every call, and can change one outgoing request
 * (to present a bad token or a spent refresh token) through `tamper`.
 */
function recordingClient(options: Partial<CarehooksClientOptions> = {}) {
  const calls: Call[] = [];
  const state: { tamper?: (url: URL, init: RequestInit) => RequestInit | undefined } = {};
  const recordingFetch: typeof fetch = async (input, init = {}) => {
    const url = new URL(String(input));
    const changed = state.tamper?.(url, init);
    if (changed) state.tamper = undefined;
    const sent = changed ?? init;
    const response = await fetch(input, sent);
    calls.push({
      method: sent.method ?? "GET",
      path: url.pathname,
      status: response.status,
      authorization: (sent.headers as Record<string, string> | undefined)?.authorization,
    });
    return response;
  };
  const client = new CarehooksClient({
    baseUrl: server.url,
    clientId: creds.client_id,
    clientSecret: creds.client_secret,
    fetch: recordingFetch,
    retryBaseDelayMs: 20,
    ...options,
  });
  return { client, calls, state };
}

const authCalls = (calls: Call[]) =>
  calls
    .filter((call) => call.path.startsWith("/connect-auth/"))
    .map((call) => `${call.path.split("/").pop()} ${call.status}`);

/** A plain fetch with a fresh token, for the writes the SDK does not wrap. */
async function raw(method: string, path: string, body?: unknown): Promise<any> {
  const login = await fetch(`${server.url}/connect-auth/v1/account/login`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ client_id: creds.client_id, client_secret: creds.client_secret }),
  });
  const { access_token } = (await login.json()) as { access_token: string };
  const response = await fetch(`${server.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${access_token}`, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const answer = await response.json();
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${JSON.stringify(answer)}`);
  return answer;
}

let bookings = 0;
function booking(patientId = "pat-sdk-1") {
  bookings++;
  return {
    doctor_id: "doc-sdk",
    patient_id: patientId,
    clinic_id: "clinic-sdk",
    start_time: `2026-12-01T${String(8 + (bookings % 10)).padStart(2, "0")}:00:00Z`,
    end_time: `2026-12-01T${String(8 + (bookings % 10)).padStart(2, "0")}:30:00Z`,
  };
}

/** A local HTTP listener; answers as `handler` says. */
const listen = (handler: http.RequestListener): Promise<string> => listenLocally(handler, closers);

async function waitFor<T>(what: string, probe: () => T | undefined | Promise<T | undefined>, timeoutMs = 15_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

describe("authentication", () => {
  it("logs in with the client credentials", async () => {
    const { client } = recordingClient();
    const pair = await client.login();
    expect(pair.expires_in).toBe(2);
    expect(pair.access_token).toBeTruthy();
    expect(pair.refresh_token).toBeTruthy();
  });

  it("refuses bad credentials with CarehooksApiError UNAUTHORIZED", async () => {
    const client = new CarehooksClient({ baseUrl: server.url, clientId: creds.client_id, clientSecret: "chs_wrong" });
    const error = await client.webhooks.list().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CarehooksApiError);
    expect(error).toMatchObject({ status: 401, code: "UNAUTHORIZED" });
    expect((error as CarehooksApiError).requestId).toMatch(/\S/);
  });

  it("refreshes the access token once it expires, with the refresh token (not a new login)", async () => {
    const { client, calls } = recordingClient();
    await client.webhooks.list();
    const firstToken = calls.at(-1)!.authorization;
    await sleep(2300);
    await client.webhooks.list();
    expect(authCalls(calls)).toEqual(["login 200", "refresh 200"]);
    const apiCalls = calls.filter((call) => !call.path.startsWith("/connect-auth/"));
    expect(apiCalls.map((call) => call.status)).toEqual([200, 200]);
    expect(calls.at(-1)!.authorization).not.toBe(firstToken);
  });

  it("renews concurrent callers with one refresh", async () => {
    const { client, calls } = recordingClient();
    await client.login();
    await sleep(2300);
    await Promise.all([client.webhooks.list(), client.events.list(), client.appointments.list()]);
    expect(authCalls(calls)).toEqual(["login 200", "refresh 200"]);
  });

  it("on a 401 it renews the token once and repeats the call", async () => {
    const { client, calls, state } = recordingClient();
    await client.login();
    state.tamper = (url, init) =>
      url.pathname.includes("/subscriptions")
        ? { ...init, headers: { ...(init.headers as Record<string, string>), authorization: "Bearer not-a-token" } }
        : undefined;
    await client.webhooks.list();
    expect(calls.map((call) => `${call.path.split("/").pop()} ${call.status}`)).toEqual([
      "login 200",
      "subscriptions 401",
      "refresh 200",
      "subscriptions 200",
    ]);
  });

  it("falls back to logging in when the refresh fails", async () => {
    const { client, calls, state } = recordingClient();
    await client.login();
    await sleep(2300);
    state.tamper = (url, init) =>
      url.pathname.endsWith("/refresh") ? { ...init, body: JSON.stringify({ refresh_token: "chr_spent" }) } : undefined;
    await client.webhooks.list();
    expect(authCalls(calls)).toEqual(["login 200", "refresh 401", "login 200"]);
    expect(calls.at(-1)).toMatchObject({ status: 200 });
  });
});

describe("webhooks", () => {
  it("create, get, list, update, disable, enable, delete", async () => {
    const { client } = recordingClient();
    const endpoint = `${await listen((_req, res) => res.end())}/crud`;
    const created = await client.webhooks.create({
      endpoint,
      event_names: ["appointment.created"],
      signing_key: "a-long-random-signing-key-01",
    });
    expect(created).toMatchObject({ status: "success" });
    expect(created.id).toMatch(/^wh_/);

    const webhook = await client.webhooks.get(created.id);
    expect(webhook).toMatchObject({
      id: created.id,
      endpoint,
      event_names: ["appointment.created"],
      signed: true,
      state: "active",
      client_id: creds.client_id,
    });

    const ids: string[] = [];
    for await (const listed of client.webhooks.iterate()) ids.push(listed.id);
    expect(ids).toContain(created.id);

    expect(
      await client.webhooks.update(created.id, {
        event_names: ["appointment.created", "prescription.created"],
        signing_key: "a-long-random-signing-key-02",
        expire_previous_key: true,
      }),
    ).toEqual({ status: "webhook updated successfully", msg: "success" });
    expect(await client.webhooks.get(created.id)).toMatchObject({
      event_names: ["appointment.created", "prescription.created"],
      signed: true,
    });
    expect(webhook).not.toHaveProperty("signing_key");

    // The newer settings and an ed25519 key pair go through the typed client as they are.
    const configured = await client.webhooks.update(created.id, {
      filter: { "data.clinic_id": { $in: ["clinic-7"] } },
      headers: { "x-region": "south" },
      timeout: 5,
      retry_schedule: [10, 60],
      signature_scheme: "ed25519",
    });
    expect(configured.public_key).toMatch(/^whpk_/);
    expect(await client.webhooks.get(created.id)).toMatchObject({
      filter: { "data.clinic_id": { $in: ["clinic-7"] } },
      headers: { "x-region": "********" },
      timeout: 5,
      retry_schedule: [10, 60],
      signature_scheme: "ed25519",
      public_key: configured.public_key,
    });
    await client.webhooks.update(created.id, {
      signature_scheme: "hmac-sha256",
      signing_key: "a-long-random-signing-key-02",
      expire_previous_key: true,
      filter: null,
      headers: null,
      timeout: null,
      retry_schedule: null,
    });
    expect(await client.webhooks.secret(created.id)).toEqual({
      signing_key: "a-long-random-signing-key-02",
      previous_signing_key: null,
      previous_key_expires_at: null,
    });
    const rotated = await client.webhooks.update(created.id, { generate_signing_key: true });
    expect(rotated.signing_key).toMatch(/^whsec_/);
    expect((await client.webhooks.secret(created.id)).signing_key).toBe(rotated.signing_key);

    expect(await client.webhooks.disable(created.id)).toMatchObject({ id: created.id, state: "disabled" });
    expect(await client.webhooks.enable(created.id)).toMatchObject({ id: created.id, state: "active" });

    expect(await client.webhooks.delete(created.id)).toEqual({
      status: "webhook deleted successfully",
      msg: "success",
    });
    const gone = await client.webhooks.get(created.id).catch((e: unknown) => e);
    expect(gone).toBeInstanceOf(CarehooksApiError);
    expect(gone).toMatchObject({ status: 404, code: "NOT_FOUND" });
    expect((gone as CarehooksApiError).requestId).toMatch(/\S/);
  });

  it("maps validation errors to INVALID_REQUEST", async () => {
    const { client } = recordingClient();
    await expect(
      client.webhooks.create({ endpoint: "not a url", event_names: ["appointment.created"] }),
    ).rejects.toMatchObject({ status: 400, code: "INVALID_REQUEST" });
  });

  it("an explicit Idempotency-Key replays the first answer; reused for another request it is a 409", async () => {
    const { client } = recordingClient();
    const endpoint = `${await listen((_req, res) => res.end())}/idempotent`;
    const key = `sdk-test-${randomBytes(6).toString("hex")}`;
    const input = { endpoint, event_names: ["appointment.updated" as const] };
    const first = await client.webhooks.create(input, { idempotencyKey: key });
    const second = await client.webhooks.create(input, { idempotencyKey: key });
    expect(second.id).toBe(first.id);
    await expect(
      client.webhooks.create({ ...input, endpoint: `${endpoint}-2` }, { idempotencyKey: key }),
    ).rejects.toMatchObject({ status: 409, code: "IDEMPOTENCY_MISMATCH" });
    await client.webhooks.delete(first.id);
  });
});

describe("clinic reads", () => {
  it("an appointment created with a plain fetch is read through the SDK", async () => {
    const { client } = recordingClient();
    const created = await raw("POST", "/dr/v1/business/appointments", booking());
    const appointment = await client.appointments.get(created.appointment_id);
    expect(appointment).toMatchObject({
      appointment_id: created.appointment_id,
      doctor_id: "doc-sdk",
      patient_id: "pat-sdk-1",
      status: "BK",
    });
  });

  it("a missing appointment is a CarehooksApiError NOT_FOUND", async () => {
    const { client } = recordingClient();
    const error = await client.appointments.get("apt_01JD3Q8W6X1B2C3D4E5F6G7H8J").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CarehooksApiError);
    expect(error).toMatchObject({ status: 404, code: "NOT_FOUND", method: "GET" });
  });

  it("the pagination iterator follows next_cursor across pages", async () => {
    const { client, calls } = recordingClient();
    const patient = `pat-page-${randomBytes(4).toString("hex")}`;
    const created: string[] = [];
    for (let i = 0; i < 5; i++)
      created.push((await raw("POST", "/dr/v1/business/appointments", booking(patient))).appointment_id);

    const first = await client.appointments.list({ patient_id: patient, limit: 2 });
    expect(first.data).toHaveLength(2);
    expect(first.next_cursor).toEqual(expect.any(String));

    const before = calls.length;
    const seen: string[] = [];
    for await (const appointment of client.appointments.iterate({ patient_id: patient, limit: 2 })) {
      seen.push(appointment.appointment_id);
    }
    expect(seen.sort()).toEqual([...created].sort());
    const pages = calls.slice(before).filter((call) => call.path === "/dr/v1/business/appointments");
    expect(pages).toHaveLength(3);
  });

  it("a prescription, current and earlier versions", async () => {
    const { client } = recordingClient();
    const created = await raw("POST", "/dr/v1/business/prescription", {
      doctor_id: "doc-sdk",
      patient_id: "pat-sdk-1",
      clinic_id: "clinic-sdk",
      prescription_details: [{ resource_type: "medicationrequest", drug_name: "Paracetamol", dose: "500 mg" }],
    });
    await raw("PATCH", `/dr/v1/business/prescription/${created.prescription_id}`, {
      prescription_details: [{ resource_type: "medicationrequest", drug_name: "Paracetamol", dose: "650 mg" }],
    });
    const current = await client.prescriptions.get(created.prescription_id);
    expect(current).toMatchObject({ prescription_id: created.prescription_id, version: 2, current_version: 2 });
    expect(current.prescription_details[0]).toMatchObject({ dose: "650 mg" });
    const first = await client.prescriptions.get(created.prescription_id, { version: 1 });
    expect(first).toMatchObject({ version: 1, current_version: 2 });
    expect(first.prescription_details[0]).toMatchObject({ dose: "500 mg" });
  });
});

describe("a webhook end to end", () => {
  it("is delivered signed, verified by nodeHandler, logged, resent, de-duplicated, recovered", async () => {
    const { client } = recordingClient();
    const signingKey = `whsec_${randomBytes(32).toString("base64")}`;
    const dedupe = new Deduplicator();
    const received: { event: CarehooksEvent; duplicate: boolean }[] = [];
    const url = await listen(
      nodeHandler(signingKey, async (event) => {
        const outcome = await dedupe.process(event, () => event.event_id);
        received.push({ event, duplicate: outcome.duplicate });
      }),
    );
    const { id: webhookId } = await client.webhooks.create({
      endpoint: `${url}/hook`,
      event_names: ["appointment.created", "appointment.updated"],
      signing_key: signingKey,
    });

    const created = await raw("POST", "/dr/v1/business/appointments", booking());
    const delivered = await waitFor("the appointment.created webhook", () =>
      received.find((r) => isAppointmentCreated(r.event) && r.event.data.appointment_id === created.appointment_id),
    );
    expect(delivered.duplicate).toBe(false);
    const event = delivered.event;
    if (!isAppointmentCreated(event)) throw new Error("narrowed above");
    expect(event.business_id).toBe(creds.business_id);
    expect(await client.appointments.get(event.data.appointment_id)).toMatchObject({ status: "BK" });

    // The delivery log.
    const delivery = await waitFor("a succeeded delivery", async () => {
      const page = await client.deliveries.list(webhookId, { status: "succeeded" });
      return page.data.find((d) => d.event_id === event.event_id);
    });
    const detail = await client.deliveries.get(delivery.id);
    expect(detail.attempts[0]).toMatchObject({ n: 1, response_status: 200 });

    // A resend delivers the same event again: the de-duplicator recognises it.
    expect(await client.deliveries.resend(delivery.id)).toMatchObject({ id: delivery.id });
    const again = await waitFor("the resent webhook", () =>
      received.find((r) => r.event.event_id === event.event_id && r.duplicate),
    );
    expect(again.event).toEqual(event);

    // A test event.
    const testDelivery = await client.webhooks.test(webhookId, { event_name: "appointment.updated" });
    await waitFor("the test event", () => received.find((r) => r.event.event_id === testDelivery.event_id));

    // Events of the business.
    const events = await client.events.list({ resource_id: created.appointment_id });
    expect(events.data.map((e) => e.id)).toContain(event.event_id);
    expect((await client.events.get(event.event_id)).payload).toEqual(event);

    // Recover (nothing failed, so nothing to re-queue) and follow the task.
    const progress: number[] = [];
    const task = await client.deliveries.recover(webhookId, { since: new Date(Date.now() - 3_600_000) });
    expect(task.id).toMatch(/^task_/);
    const finished = await client.tasks.wait(task.id, { intervalMs: 100, onProgress: (t) => progress.push(t.done) });
    expect(finished.state).toBe("succeeded");
    expect(progress.length).toBeGreaterThan(0);
    expect(await client.tasks.get(task.id)).toMatchObject({ id: task.id, state: "succeeded" });

    await client.webhooks.delete(webhookId);
  });
});

describe("retries against the real server", () => {
  it("a 503 from a proxy in front of carehooks is retried and the call succeeds", async () => {
    let refused = 0;
    const proxy = await listen(async (req, res) => {
      if (req.url?.startsWith("/notification/v1/connect/webhook/subscriptions") && refused < 2) {
        refused++;
        res.writeHead(503, { "content-type": "application/json", "retry-after": "0" });
        res.end(JSON.stringify({ error: { code: "SERVICE_UNAVAILABLE", message: "try again", request_id: "proxy" } }));
        return;
      }
      const chunks: Buffer[] = [];
      for await (const chunk of req) chunks.push(chunk as Buffer);
      const headers = Object.fromEntries(
        Object.entries(req.headers).filter(([name]) => !["host", "connection", "content-length"].includes(name)),
      ) as Record<string, string>;
      const upstream = await fetch(`${server.url}${req.url}`, {
        method: req.method!,
        headers,
        body: chunks.length > 0 ? Buffer.concat(chunks) : undefined,
      });
      res.writeHead(upstream.status, { "content-type": upstream.headers.get("content-type") ?? "application/json" });
      res.end(Buffer.from(await upstream.arrayBuffer()));
    });
    const client = new CarehooksClient({
      baseUrl: proxy,
      clientId: creds.client_id,
      clientSecret: creds.client_secret,
      retryBaseDelayMs: 10,
    });
    const page = await client.webhooks.list();
    expect(refused).toBe(2);
    expect(page.msg).toBe("success");
  });
});
