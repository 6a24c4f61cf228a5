import { once } from "node:events";
import net, { type AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AccessLogWriter } from "../src/audit/access-log-writer.js";
import { TokenService } from "../src/auth/tokens.js";
import { loadConfig } from "../src/config/load.js";
import { generateMasterKey, KeyBox } from "../src/domain/key-box.js";
import { buildApp } from "../src/http/app.js";
import { Metrics } from "../src/ops/metrics.js";
import { createCaches } from "../src/store/caches.js";
import { openDatabase } from "../src/store/open.js";
import { LocalWakeup } from "../src/store/wakeup.js";
import { type Harness, startHarness, type Tenant } from "./support/harness.js";

const BASE = "/notification/v1/connect/webhook/subscriptions";

/** Every process warning of this file's worker, from before the first app is built. */
const warnings: (Error & { code?: string })[] = [];
process.on("warning", (warning) => warnings.push(warning));

describe("error answers", () => {
  let h: Harness;
  let tenant: Tenant;

  beforeAll(async () => {
    h = await startHarness("sqlite", { CAREHOOKS_BODY_LIMIT: "2KiB" });
    tenant = await h.tenant();
  });
  afterAll(async () => h?.close());

  function expectError(
    response: { statusCode: number; json(): any; headers: Record<string, unknown> },
    status: number,
    code: string,
  ) {
    expect(response.statusCode).toBe(status);
    const body = response.json();
    expect(Object.keys(body)).toEqual(["error"]);
    expect(body.error.code).toBe(code);
    expect(body.error.request_id).toBe(response.headers["x-request-id"]);
    expect(JSON.stringify(body)).not.toMatch(/at .*\.(ts|js):\d+|SELECT|sqlite/i);
  }

  it("lists the allowed values when a field must be one of several", async () => {
    const headers = { authorization: `Bearer ${tenant.accessToken}`, "content-type": "application/json" };
    const body = { endpoint: "https://example.com/hook", event_names: ["appointment.created"], ordering: "sorted" };
    const response = await h.app.inject({ method: "POST", url: BASE, headers, payload: body });
    expectError(response, 400, "INVALID_REQUEST");
    expect(response.json().error.message).toBe("body.ordering must be one of none, per_resource");
    const protocol = await h.app.inject({
      method: "POST",
      url: BASE,
      headers,
      payload: { ...body, ordering: "none", protocol: "ftp" },
    });
    expect(protocol.json().error.message).toBe("body.protocol must be one of http, https");
  });

  it("answers 404 for an unknown route and 405 for a known path with the wrong method", async () => {
    expectError(await h.app.inject({ method: "GET", url: "/no/such/thing" }), 404, "NOT_FOUND");
    const wrong = await h.app.inject({ method: "PUT", url: `${BASE}/wh_abc` });
    expectError(wrong, 405, "METHOD_NOT_ALLOWED");
    expect(wrong.headers.allow).toBe("DELETE, GET, HEAD, PATCH");
  });

  it("answers 400 for malformed JSON, 415 for another media type, 413 over the body limit", async () => {
    const headers = { authorization: `Bearer ${tenant.accessToken}`, "content-type": "application/json" };
    expectError(
      await h.app.inject({ method: "POST", url: BASE, headers, payload: '{"endpoint":' }),
      400,
      "INVALID_REQUEST",
    );
    expectError(
      await h.app.inject({
        method: "POST",
        url: BASE,
        headers: { ...headers, "content-type": "text/plain" },
        payload: "hi",
      }),
      415,
      "UNSUPPORTED_MEDIA_TYPE",
    );
    expectError(
      await h.app.inject({
        method: "POST",
        url: BASE,
        headers: { ...headers, "content-type": "application/xml" },
        payload: "<a/>",
      }),
      415,
      "UNSUPPORTED_MEDIA_TYPE",
    );
    const big = JSON.stringify({
      endpoint: `https://x.example.com/${"a".repeat(3000)}`,
      event_names: ["appointment.created"],
    });
    expectError(await h.app.inject({ method: "POST", url: BASE, headers, payload: big }), 413, "PAYLOAD_TOO_LARGE");
  });

  it("refuses prototype-poisoning bodies", async () => {
    const headers = { authorization: `Bearer ${tenant.accessToken}`, "content-type": "application/json" };
    const payload = '{"endpoint":"https://p.example.com/","event_names":["appointment.created"],"__proto__":{"x":1}}';
    expectError(await h.app.inject({ method: "POST", url: BASE, headers, payload }), 400, "INVALID_REQUEST");
  });

  it("checks auth before the body, so an anonymous caller learns nothing from validation", async () => {
    expectError(await h.app.inject({ method: "POST", url: BASE, payload: { nonsense: true } }), 401, "UNAUTHORIZED");
  });

  it("accepts an empty body on an action POST", async () => {
    const created = await tenant.request("POST", BASE, {
      endpoint: "https://empty.example.com/",
      event_names: ["appointment.created"],
    });
    const id = created.json().id;
    const response = await h.app.inject({
      method: "POST",
      url: `${BASE}/${id}/disable`,
      headers: { authorization: `Bearer ${tenant.accessToken}`, "content-type": "application/json" },
      payload: "",
    });
    expect(response.statusCode).toBe(200);
  });

  it("serves health, the OpenAPI document and its reference page", async () => {
    expect((await h.app.inject({ method: "GET", url: "/healthz" })).json()).toMatchObject({ status: "ok" });
    expect((await h.app.inject({ method: "GET", url: "/readyz" })).json()).toMatchObject({
      status: "ready",
      database: "sqlite",
      queue: { pending: 0 },
    });
    const doc = (await h.app.inject({ method: "GET", url: "/openapi.json" })).json();
    expect(doc.openapi).toBe("3.1.0");
    expect(Object.keys(doc.paths)).toContain(BASE);
    // The interactive reference: its page and assets come from this server, and its CSP allows nothing else.
    const page = await h.app.inject({ method: "GET", url: "/docs/" });
    expect(page.statusCode).toBe(200);
    expect(page.headers["content-type"]).toMatch(/text\/html/);
    const csp = String(page.headers["content-security-policy"]);
    expect(csp).toMatch(/default-src 'self'/);
    expect(csp).not.toMatch(/https?:/);
    const assets = [...page.body.matchAll(/(?:src|href)="([^"]+)"/g)].map((match) => match[1] as string);
    expect(assets.length).toBeGreaterThan(2);
    for (const asset of assets) {
      expect(asset, asset).not.toMatch(/^(https?:)?\/\//);
      const url = new URL(asset, "http://host/docs/").pathname;
      expect((await h.app.inject({ method: "GET", url })).statusCode, url).toBe(200);
    }
    const spec = (await h.app.inject({ method: "GET", url: "/docs/json" })).json();
    expect(Object.keys(spec.paths)).toContain(`${BASE}/{id}`);
  });
});

describe("login rate limit", () => {
  it("answers 429 RATE_LIMITED with Retry-After past CAREHOOKS_LOGIN_RATE_LIMIT per minute", async () => {
    const h = await startHarness("sqlite", { CAREHOOKS_LOGIN_RATE_LIMIT: "3" });
    try {
      const attempt = () =>
        h.app.inject({
          method: "POST",
          url: "/connect-auth/v1/account/login",
          payload: { client_id: "cli_x", client_secret: "nope" },
        });
      for (let i = 0; i < 3; i++) expect((await attempt()).statusCode).toBe(401);
      const limited = await attempt();
      expect(limited.statusCode).toBe(429);
      expect(limited.json().error.code).toBe("RATE_LIMITED");
      expect(Number(limited.headers["retry-after"])).toBeGreaterThan(0);
    } finally {
      await h.close();
    }
  });
});

describe("an unreachable database", () => {
  it("answers 503 with Retry-After, not 500", async () => {
    const config = loadConfig({
      CAREHOOKS_DATABASE_URL: "postgres://postgres@127.0.0.1:1/test",
      CAREHOOKS_MASTER_KEY: generateMasterKey(),
      CAREHOOKS_JWT_SECRET: generateMasterKey(),
    });
    const adapter = openDatabase(config.databaseUrl, { sqliteSynchronous: "FULL", poolSize: 1 });
    const tokens = new TokenService(config.jwtSecret as string, config.accessTokenTtl);
    const app = await buildApp({
      config,
      adapter,
      db: adapter.db,
      keyBox: new KeyBox(config.masterKey as string),
      tokens,
      urlPolicy: { allowHttp: false, allowedTargets: [] },
      audit: new AccessLogWriter(adapter.db),
      wakeup: new LocalWakeup(),
      metrics: new Metrics(async () => {}),
      caches: createCaches(adapter, config),
    });
    try {
      const ready = await app.inject({ method: "GET", url: "/readyz" });
      expect(ready.statusCode).toBe(503);
      expect(ready.json().error.code).toBe("SERVICE_UNAVAILABLE");
      expect(ready.headers["retry-after"]).toBeDefined();
      const token = await tokens.issue({ clientId: "cli_x", businessId: "biz_x" });
      const list = await app.inject({ method: "GET", url: BASE, headers: { authorization: `Bearer ${token}` } });
      expect(list.statusCode).toBe(503);
      expect(list.json().error.code).toBe("SERVICE_UNAVAILABLE");
      expect((await app.inject({ method: "GET", url: "/healthz" })).statusCode).toBe(200);
    } finally {
      await app.close();
      await adapter.close();
    }
  });
});

describe("a server that is shutting down", () => {
  it("answers a request that arrives after closing began with 503, Retry-After and Connection: close", async () => {
    const h = await startHarness("sqlite");
    let closed: Promise<void> | undefined;
    const socket = new net.Socket();
    try {
      await h.app.listen({ host: "127.0.0.1", port: 0 });
      const { port } = h.app.server.address() as AddressInfo;
      const received: Buffer[] = [];
      socket.on("data", (chunk: Buffer) => received.push(chunk));
      const ended = once(socket, "close");
      socket.connect(port, "127.0.0.1");
      await once(socket, "connect");
      // A request whose body is still arriving keeps its connection busy, so closing does not drop it.
      const started = once(h.app.server, "request");
      socket.write(
        "POST /connect-auth/v1/account/login HTTP/1.1\r\nhost: test\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{",
      );
      await started;
      closed = h.app.close();
      // The rest of that body, then a second request on the same connection: the one that must be turned away.
      socket.write("}GET /healthz HTTP/1.1\r\nhost: test\r\n\r\n");
      await ended;
      const answers = Buffer.concat(received)
        .toString("utf8")
        .split(/(?=HTTP\/1\.1 )/);
      expect(answers).toHaveLength(2);
      // The first request began before closing: it is answered as usual (here, the empty login is invalid).
      expect(answers[0]).toMatch(/^HTTP\/1\.1 400 /);
      const [head, body] = (answers[1] as string).split("\r\n\r\n") as [string, string];
      expect(head).toMatch(/^HTTP\/1\.1 503 /);
      // (Fastify closes a connection it answers while closing too; the 503 and its headers are the app's.)
      expect(head).toMatch(/\r\nconnection: close\r\n/i);
      expect(head).toMatch(/\r\nretry-after: 1\r\n/i);
      expect(head).toMatch(/\r\nx-request-id: \S+/i);
      expect(JSON.parse(body).error.code).toBe("SERVICE_UNAVAILABLE");
    } finally {
      socket.destroy();
      await (closed ?? h.app.close());
      await h.close();
    }
  });
});

describe("request logging", () => {
  it("writes one line per answered request, with its id, method, URL, status and time, not Fastify's two", async () => {
    const lines: Record<string, unknown>[] = [];
    const stream = {
      write(line: string) {
        lines.push(JSON.parse(line) as Record<string, unknown>);
      },
    };
    const h = await startHarness("sqlite", {}, { logger: { level: "info", stream } });
    try {
      const answers = [
        await h.app.inject({ method: "GET", url: "/healthz" }),
        await h.app.inject({ method: "GET", url: "/no/such/route?x=1" }),
        await h.app.inject({ method: "POST", url: "/dr/v1/business/appointments", payload: {} }),
      ];
      const requests = lines.filter((line) => line.msg === "request");
      expect(requests.map(({ method, url, statusCode }) => ({ method, url, statusCode }))).toEqual([
        { method: "GET", url: "/healthz", statusCode: 200 },
        { method: "GET", url: "/no/such/route?x=1", statusCode: 404 },
        { method: "POST", url: "/dr/v1/business/appointments", statusCode: 401 },
      ]);
      expect(requests.map((line) => line.reqId)).toEqual(answers.map((answer) => answer.headers["x-request-id"]));
      for (const line of requests) {
        expect(line.level).toBe(30);
        expect(line.responseTime).toBeGreaterThanOrEqual(0);
      }
      expect(lines.filter((line) => line.msg === "incoming request" || line.msg === "request completed")).toEqual([]);
    } finally {
      await h.close();
    }
  });

  it("is set without an option Fastify warns of: no deprecation warning on start", async () => {
    const h = await startHarness("sqlite", {}, { logger: { level: "info", stream: { write() {} } } });
    await h.close();
    // Warnings are emitted on the next tick.
    await new Promise((resolve) => setImmediate(resolve));
    // Node's own DeprecationWarning, or a library's (Fastify's are FastifyDeprecation, code FSTDEP…).
    const deprecations = warnings.filter(({ name, code }) => /Deprecation/.test(name) || /DEP\d/.test(code ?? ""));
    expect(deprecations.map(({ name, code, message }) => ({ name, code, message }))).toEqual([]);
  });
});
