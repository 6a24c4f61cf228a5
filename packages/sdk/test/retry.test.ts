/**
 * Retries, backoff and error mapping against a fake API on a real socket: the
 * fake answers login like carehooks and then whatever each test scripts.
 */
import type http from "node:http";
import { afterEach, describe, expect, it } from "vitest";
import { backoffDelay, parseRetryAfter } from "../src/client/backoff.js";
import { CarehooksApiError, CarehooksClient, CarehooksConnectionError } from "../src/index.js";
import { listenLocally } from "./support/local-server.js";

interface Seen {
  method: string;
  path: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

type Script = (request: Seen, index: number, res: http.ServerResponse) => void;

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (closers.length > 0) await closers.pop()!();
});

/** A fake API: login always works; other requests are answered by `script` (index counts non-login requests). */
async function fakeApi(script: Script, options: { loginFailures?: number } = {}) {
  const seen: Seen[] = [];
  const logins: number[] = [];
  const url = await listenLocally(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const request = {
      method: req.method!,
      path: req.url!,
      headers: req.headers,
      body: Buffer.concat(chunks).toString(),
    };
    if (request.path.startsWith("/connect-auth/")) {
      logins.push(Date.now());
      if (logins.length <= (options.loginFailures ?? 0)) return apiError(res, 503, "SERVICE_UNAVAILABLE");
      json(res, 200, { access_token: "tok", expires_in: 900, refresh_token: "ref", refresh_expires_in: 86400 });
      return;
    }
    seen.push(request);
    script(request, seen.length - 1, res);
  }, closers);
  return { url, seen, logins };
}

function json(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) {
  res.writeHead(status, { "content-type": "application/json", ...headers });
  res.end(JSON.stringify(body));
}

function apiError(res: http.ServerResponse, status: number, code: string, headers: Record<string, string> = {}) {
  json(res, status, { error: { code, message: `${code} for the test`, request_id: `req_${status}` } }, headers);
}

const PAGE = { data: [], next_cursor: null, msg: "success" };

function client(url: string, options: Partial<ConstructorParameters<typeof CarehooksClient>[0]> = {}) {
  return new CarehooksClient({
    baseUrl: url,
    clientId: "cli_test",
    clientSecret: "chs_test",
    retryBaseDelayMs: 10,
    retryMaxDelayMs: 50,
    ...options,
  });
}

describe("retries", () => {
  it("retries a GET on 503 until it succeeds", async () => {
    const api = await fakeApi((_request, index, res) =>
      index < 2 ? apiError(res, 503, "SERVICE_UNAVAILABLE", { "retry-after": "0" }) : json(res, 200, PAGE),
    );
    expect(await client(api.url).webhooks.list()).toEqual(PAGE);
    expect(api.seen).toHaveLength(3);
  });

  it("retries on 500 and 502 (even without a JSON body) with backoff", async () => {
    const api = await fakeApi((_request, index, res) => {
      if (index === 0) return apiError(res, 500, "SERVER_ERROR");
      if (index === 1) {
        res.writeHead(502, { "content-type": "text/html" });
        return void res.end("<html>bad gateway</html>");
      }
      json(res, 200, PAGE);
    });
    expect(await client(api.url).events.list()).toEqual(PAGE);
    expect(api.seen).toHaveLength(3);
  });

  it("honours Retry-After on 429", async () => {
    const api = await fakeApi((_request, index, res) =>
      index === 0 ? apiError(res, 429, "RATE_LIMITED", { "retry-after": "1" }) : json(res, 200, PAGE),
    );
    const started = Date.now();
    await client(api.url).webhooks.list();
    expect(Date.now() - started).toBeGreaterThanOrEqual(950);
    expect(api.seen).toHaveLength(2);
  });

  it("gives up after maxRetries with the last CarehooksApiError", async () => {
    const api = await fakeApi((_request, _index, res) => apiError(res, 503, "SERVICE_UNAVAILABLE"));
    const error = await client(api.url, { maxRetries: 2 })
      .webhooks.get("wh_1")
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CarehooksApiError);
    expect(error).toMatchObject({ status: 503, code: "SERVICE_UNAVAILABLE", requestId: "req_503" });
    expect(api.seen).toHaveLength(3);
  });

  it("does not wait for a Retry-After beyond maxRetryAfterMs", async () => {
    const api = await fakeApi((_request, _index, res) => apiError(res, 429, "RATE_LIMITED", { "retry-after": "3600" }));
    const error = await client(api.url)
      .webhooks.list()
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ status: 429, code: "RATE_LIMITED", retryAfterMs: 3_600_000 });
    expect(api.seen).toHaveLength(1);
  });

  it("does not retry a 4xx", async () => {
    const api = await fakeApi((_request, _index, res) => apiError(res, 404, "NOT_FOUND"));
    await expect(client(api.url).webhooks.get("wh_missing")).rejects.toMatchObject({
      status: 404,
      code: "NOT_FOUND",
      message: "NOT_FOUND for the test",
    });
    expect(api.seen).toHaveLength(1);
  });

  it("retries network errors (a reset connection)", async () => {
    const api = await fakeApi((_request, index, res) => {
      if (index === 0) return void res.socket?.destroy();
      json(res, 200, { data: { id: "task_1", state: "succeeded" } });
    });
    expect(await client(api.url).tasks.get("task_1")).toMatchObject({ id: "task_1" });
    expect(api.seen).toHaveLength(2);
  });

  it("times out each attempt after timeoutMs, then throws CarehooksConnectionError", async () => {
    const api = await fakeApi(() => {
      // never answers
    });
    const error = await client(api.url, { timeoutMs: 150, maxRetries: 1 })
      .webhooks.list()
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CarehooksConnectionError);
    expect(error).toMatchObject({ code: "TIMEOUT" });
    expect(api.seen).toHaveLength(2);
  });

  it("throws CarehooksConnectionError when nothing listens", async () => {
    const api = await fakeApi(() => {});
    const url = api.url;
    await closers.pop()!();
    const error = await client(url, { maxRetries: 1 })
      .webhooks.list()
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CarehooksConnectionError);
    expect(error).toMatchObject({ code: "CONNECTION_ERROR" });
  });

  it("stops when the caller aborts", async () => {
    const api = await fakeApi((_request, _index, res) =>
      apiError(res, 503, "SERVICE_UNAVAILABLE", { "retry-after": "5" }),
    );
    const controller = new AbortController();
    const pending = client(api.url).webhooks.list({}, { signal: controller.signal });
    setTimeout(() => controller.abort(new Error("caller gave up")), 200);
    await expect(pending).rejects.toThrow("caller gave up");
  });
});

describe("login retries", () => {
  it("retries a login that met a 503", async () => {
    const api = await fakeApi((_request, _index, res) => json(res, 200, PAGE), { loginFailures: 2 });
    expect(await client(api.url).webhooks.list()).toEqual(PAGE);
    expect(api.logins).toHaveLength(3);
    expect(api.seen).toHaveLength(1);
  });
});

describe("POST retries with an Idempotency-Key", () => {
  it("retries a create with the same generated key, so it cannot double-create", async () => {
    const api = await fakeApi((_request, index, res) =>
      index === 0 ? apiError(res, 503, "SERVICE_UNAVAILABLE") : json(res, 201, { id: "wh_1", status: "success" }),
    );
    const sdk = client(api.url);
    const input = { endpoint: "https://example.com/hook", event_names: ["appointment.created" as const] };
    expect(await sdk.webhooks.create(input)).toEqual({ id: "wh_1", status: "success" });
    await sdk.webhooks.create(input);
    const keys = api.seen.map((request) => request.headers["idempotency-key"]);
    expect(keys).toHaveLength(3);
    expect(keys[0]).toMatch(/^[0-9a-f-]{36}$/);
    expect(keys[1]).toBe(keys[0]); // the retry of the first call
    expect(keys[2]).not.toBe(keys[0]); // a second logical call
    expect(api.seen[1]!.body).toBe(api.seen[0]!.body);
  });

  it("sends the caller's own key when given", async () => {
    const api = await fakeApi((_request, _index, res) => json(res, 202, { data: { id: "dlv_1" } }));
    await client(api.url).deliveries.resend("dlv_1", { idempotencyKey: "resend-dlv_1-once" });
    expect(api.seen[0]!.headers["idempotency-key"]).toBe("resend-dlv_1-once");
  });

  it("GETs carry no key", async () => {
    const api = await fakeApi((_request, _index, res) => json(res, 200, PAGE));
    await client(api.url).appointments.list({ status: "BK", from: new Date("2026-01-01T00:00:00Z"), limit: 5 });
    expect(api.seen[0]!.headers["idempotency-key"]).toBeUndefined();
    expect(api.seen[0]!.path).toBe("/dr/v1/business/appointments?status=BK&from=2026-01-01T00%3A00%3A00.000Z&limit=5");
  });
});

describe("backoff", () => {
  const policy = { maxRetries: 5, baseDelayMs: 100, maxDelayMs: 1000, maxRetryAfterMs: 60_000 };

  it("grows exponentially with jitter between half and all of the step, capped", () => {
    expect(backoffDelay(policy, 0, () => 0)).toBe(50);
    expect(backoffDelay(policy, 0, () => 1)).toBe(100);
    expect(backoffDelay(policy, 3, () => 0.5)).toBe(600);
    expect(backoffDelay(policy, 10, () => 1)).toBe(1000);
  });

  it("reads Retry-After as seconds or an HTTP date", () => {
    expect(parseRetryAfter("7")).toBe(7000);
    expect(parseRetryAfter(null)).toBeUndefined();
    expect(parseRetryAfter("soon")).toBeUndefined();
    const now = Date.parse("2026-01-01T00:00:00Z");
    expect(parseRetryAfter("Thu, 01 Jan 2026 00:00:30 GMT", now)).toBe(30_000);
  });
});
