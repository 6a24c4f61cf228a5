/**
 * The server side of the dashboard: its static files under a strict CSP, the
 * scopes in token answers, portal sessions (single use, narrowed scopes,
 * branding) and the overview's stats.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { dashboardDir } from "../src/http/dashboard.js";
import { dialects } from "./support/databases.js";
import { type Harness, LOCAL_DELIVERY_ENV, startHarness, type Tenant } from "./support/harness.js";

const PORTAL = "/notification/v1/connect/webhook/portal-sessions";
const EXCHANGE = "/connect-auth/v1/portal-sessions/exchange";
const SUBSCRIPTIONS = "/notification/v1/connect/webhook/subscriptions";

describe.each(dialects())("dashboard API on %s", (dialect) => {
  let h: Harness;
  let alice: Tenant;

  beforeAll(async () => {
    h = await startHarness(dialect, {
      ...LOCAL_DELIVERY_ENV,
      CAREHOOKS_BRAND_NAME: "Clinic Hooks",
      CAREHOOKS_BRAND_ACCENT_COLOR: "#AA3300",
      CAREHOOKS_PUBLIC_URL: "https://hooks.clinic.example/",
      CAREHOOKS_DASHBOARD_FRAME_ANCESTORS: "https://platform.clinic.example",
    });
    alice = await h.tenant();
  });
  afterAll(async () => h?.close());

  async function exchange(token: string) {
    return h.app.inject({ method: "POST", url: EXCHANGE, payload: { token } });
  }

  async function portalLink(tenant: Tenant, body: Record<string, unknown> = {}) {
    const response = await tenant.request("POST", PORTAL, body);
    expect(response.statusCode, response.body).toBe(201);
    const data = response.json().data;
    return { ...data, token: new URL(data.url).hash.replace("#token=", "") };
  }

  it.runIf(dashboardDir() !== undefined)(
    "serves the built dashboard with a self-only CSP, and every page path",
    async () => {
      for (const url of ["/dashboard", "/dashboard/", "/dashboard/webhooks/wh_1", "/dashboard/portal"]) {
        const page = await h.app.inject({ method: "GET", url });
        expect(page.statusCode, url).toBe(200);
        expect(page.headers["content-type"]).toContain("text/html");
        expect(page.body).toContain('<div id="app"></div>');
        const csp = String(page.headers["content-security-policy"]);
        expect(csp).toContain("default-src 'none'");
        expect(csp).toContain("script-src 'self'");
        expect(csp).toContain("connect-src 'self'");
        expect(csp).toContain("frame-ancestors https://platform.clinic.example");
        expect(csp).not.toContain("unsafe");
        expect(page.headers["referrer-policy"]).toBe("no-referrer");
      }
      const index = await h.app.inject({ method: "GET", url: "/dashboard/" });
      const script = /src="(\/dashboard\/assets\/[^"]+\.js)"/.exec(index.body)?.[1];
      expect(script).toBeDefined();
      const asset = await h.app.inject({ method: "GET", url: script as string });
      expect(asset.statusCode).toBe(200);
      expect(asset.headers["content-type"]).toContain("text/javascript");
      expect(asset.headers["cache-control"]).toContain("immutable");
      const again = await h.app.inject({
        method: "GET",
        url: script as string,
        headers: { "if-none-match": String(asset.headers.etag) },
      });
      expect(again.statusCode).toBe(304);
      const missing = await h.app.inject({ method: "GET", url: "/dashboard/assets/missing.js" });
      expect(missing.statusCode).toBe(404);
      expect(missing.json().error.code).toBe("NOT_FOUND");
    },
  );

  it("hands the page its configured branding, and keeps the dashboard out of the OpenAPI document", async () => {
    const config = await h.app.inject({ method: "GET", url: "/dashboard/config.json" });
    expect(config.json().branding).toEqual({ product_name: "Clinic Hooks", logo_url: null, accent_color: "#aa3300" });
    const openapi = (await h.app.inject({ method: "GET", url: "/openapi.json" })).json();
    expect(Object.keys(openapi.paths).some((path) => path.startsWith("/dashboard"))).toBe(false);
  });

  it("answers the client's scopes with login and refresh", async () => {
    const reader = await alice.colleague(["webhooks:read", "audit:read"]);
    const login = await h.app.inject({
      method: "POST",
      url: "/connect-auth/v1/account/login",
      payload: { client_id: reader.clientId, client_secret: reader.clientSecret },
    });
    expect(login.json().scope).toBe("webhooks:read audit:read");
    const refresh = await h.app.inject({
      method: "POST",
      url: "/connect-auth/v1/account/refresh",
      payload: { refresh_token: login.json().refresh_token },
    });
    expect(refresh.json().scope).toBe("webhooks:read audit:read");
  });

  it("signs out: logout revokes the refresh token and every token rotated from it", async () => {
    const post = (url: string, payload: object) => h.app.inject({ method: "POST", url, payload });
    const login = (
      await post("/connect-auth/v1/account/login", { client_id: alice.clientId, client_secret: alice.clientSecret })
    ).json();
    const rotated = (await post("/connect-auth/v1/account/refresh", { refresh_token: login.refresh_token })).json();
    const out = await post("/connect-auth/v1/account/logout", { refresh_token: rotated.refresh_token });
    expect(out.statusCode).toBe(204);
    expect(out.body).toBe("");
    const after = await post("/connect-auth/v1/account/refresh", { refresh_token: rotated.refresh_token });
    expect(after.statusCode).toBe(401);
    // Unknown tokens answer the same, and nothing else is touched.
    expect((await post("/connect-auth/v1/account/logout", { refresh_token: "chr_unknown" })).statusCode).toBe(204);
    expect((await post("/connect-auth/v1/account/logout", {})).statusCode).toBe(400);
    const other = (
      await post("/connect-auth/v1/account/login", { client_id: alice.clientId, client_secret: alice.clientSecret })
    ).json();
    expect((await post("/connect-auth/v1/account/refresh", { refresh_token: other.refresh_token })).statusCode).toBe(
      200,
    );
  });

  it("opens a read-write portal once, signed in for the business, with the configured branding", async () => {
    const link = await portalLink(alice);
    expect(link.url).toMatch(/^https:\/\/hooks\.clinic\.example\/dashboard\/portal#token=chp_[A-Za-z0-9_-]{43}$/);
    expect(link.read_only).toBe(false);
    expect(Date.parse(link.expires_at) - Date.now()).toBeGreaterThan(14 * 60_000);
    expect(Date.parse(link.expires_at) - Date.now()).toBeLessThanOrEqual(15 * 60_000);

    const opened = await exchange(link.token);
    expect(opened.statusCode, opened.body).toBe(200);
    const session = opened.json();
    expect(session).toMatchObject({
      scope: "webhooks:read webhooks:write",
      client_id: alice.clientId,
      read_only: false,
      expires_in: 3600,
      branding: { product_name: "Clinic Hooks", logo_url: null, accent_color: "#aa3300" },
    });
    expect(session.refresh_token).toBeUndefined();
    const auth = { authorization: `Bearer ${session.access_token}` };
    const created = await h.app.inject({
      method: "POST",
      url: SUBSCRIPTIONS,
      headers: auth,
      payload: { endpoint: "https://portal.example/hooks", event_names: ["appointment.created"] },
    });
    expect(created.statusCode, created.body).toBe(201);
    // The portal's token reaches webhooks only, whatever else its client holds.
    const audit = await h.app.inject({ method: "GET", url: "/audit/v1/access-logs", headers: auth });
    expect(audit.statusCode).toBe(403);

    const twice = await exchange(link.token);
    expect(twice.statusCode).toBe(401);
    expect(twice.json().error.message).toContain("already used");
  });

  it("narrows a read-only portal to webhooks:read, and applies the session's branding", async () => {
    const link = await portalLink(alice, {
      read_only: true,
      expires_in: 120,
      branding: { product_name: "Acme Portal", logo_url: "https://acme.example/logo.png", accent_color: "#123456" },
    });
    expect(Date.parse(link.expires_at) - Date.now()).toBeLessThanOrEqual(120_000);
    const session = (await exchange(link.token)).json();
    expect(session.scope).toBe("webhooks:read");
    expect(session.read_only).toBe(true);
    expect(session.branding).toEqual({
      product_name: "Acme Portal",
      logo_url: "https://acme.example/logo.png",
      accent_color: "#123456",
    });
    const auth = { authorization: `Bearer ${session.access_token}` };
    expect((await h.app.inject({ method: "GET", url: SUBSCRIPTIONS, headers: auth })).statusCode).toBe(200);
    const write = await h.app.inject({
      method: "POST",
      url: SUBSCRIPTIONS,
      headers: auth,
      payload: { endpoint: "https://readonly.example/hooks", event_names: ["appointment.created"] },
    });
    expect(write.statusCode).toBe(403);
  });

  it("refuses unknown and expired links, bad branding, and clients that cannot read webhooks", async () => {
    expect((await exchange(`chp_${"x".repeat(43)}`)).statusCode).toBe(401);
    expect((await exchange("not-a-token")).statusCode).toBe(400);

    const link = await portalLink(alice, { expires_in: 60 });
    await h.ctx.db
      .updateTable("portal_session")
      .set({ expires_at: Date.now() - 1 })
      .where("id", "=", link.id)
      .execute();
    expect((await exchange(link.token)).statusCode).toBe(401);

    for (const branding of [{ accent_color: "red" }, { logo_url: "javascript:alert(1)" }, { font: "x" }]) {
      expect((await alice.request("POST", PORTAL, { branding })).statusCode).toBe(400);
    }
    expect((await alice.request("POST", PORTAL, { expires_in: 10 })).statusCode).toBe(400);
    const writerOnly = await alice.colleague(["webhooks:write"]);
    expect((await writerOnly.request("POST", PORTAL, {})).statusCode).toBe(403);
    const reader = await alice.colleague(["webhooks:read"]);
    expect((await reader.request("POST", PORTAL, {})).statusCode).toBe(403);
  });

  it("stops a portal whose client is revoked", async () => {
    const colleague = await alice.colleague();
    const link = await portalLink(colleague);
    await h.ctx.db
      .updateTable("api_client")
      .set({ revoked_at: Date.now() })
      .where("id", "=", colleague.clientId)
      .execute();
    expect((await exchange(link.token)).statusCode).toBe(401);
  });

  it("counts deliveries per minute and per webhook, and the queue, for the overview", async () => {
    const bob = await h.tenant();
    const empty = (await bob.request("GET", "/notification/v1/connect/webhook/stats?hours=1")).json().data;
    expect(empty.minutes).toHaveLength(60);
    expect(empty.webhooks).toEqual([]);
    expect(empty.queue).toEqual({ pending: 0, in_flight: 0, oldest_due_seconds: 0 });

    const created = await bob.request("POST", SUBSCRIPTIONS, {
      endpoint: "http://127.0.0.1:9/never",
      event_names: ["appointment.created"],
    });
    const id = created.json().id;
    for (let i = 0; i < 3; i++) {
      expect((await bob.request("POST", `${SUBSCRIPTIONS}/${id}/test`, {})).statusCode).toBe(202);
    }
    // Nobody delivers in this harness: three pending, and one of them marked succeeded by hand.
    const rows = await h.ctx.db.selectFrom("delivery").select("id").where("subscription_id", "=", id).execute();
    await h.ctx.db
      .updateTable("delivery")
      .set({ status: "succeeded", next_attempt_at: null })
      .where("id", "=", rows[0]?.id as string)
      .execute();
    const stats = (await bob.request("GET", "/notification/v1/connect/webhook/stats")).json().data;
    expect(stats.minutes).toHaveLength(180);
    const total = stats.minutes.reduce((sum: number, m: any) => sum + m.succeeded + m.failed + m.other, 0);
    expect(total).toBe(3);
    expect(stats.minutes.at(-1).minute).toMatch(/:00Z$/);
    expect(stats.webhooks).toEqual([{ subscription_id: id, succeeded: 1, failed: 0 }]);
    expect(stats.queue.pending).toBe(2);
    // Another business sees none of it.
    expect((await alice.request("GET", "/notification/v1/connect/webhook/stats")).json().data.queue.pending).toBe(0);
    expect((await bob.request("GET", "/notification/v1/connect/webhook/stats?hours=25")).statusCode).toBe(400);
  });

  it("lists events and deliveries newest first with order=desc, page after page", async () => {
    const carol = await h.tenant();
    const id = (
      await carol.request("POST", SUBSCRIPTIONS, {
        endpoint: "http://127.0.0.1:9/x",
        event_names: ["appointment.created"],
      })
    ).json().id;
    for (let i = 0; i < 5; i++) await carol.request("POST", `${SUBSCRIPTIONS}/${id}/test`, {});
    for (const path of ["/notification/v1/connect/webhook/events", `${SUBSCRIPTIONS}/${id}/deliveries`]) {
      const ascending = (await carol.request("GET", `${path}?limit=50`)).json().data.map((item: any) => item.id);
      expect(ascending).toHaveLength(5);
      const first = (await carol.request("GET", `${path}?order=desc&limit=3`)).json();
      const second = (await carol.request("GET", `${path}?order=desc&limit=3&cursor=${first.next_cursor}`)).json();
      expect(second.next_cursor).toBeNull();
      expect([...first.data, ...second.data].map((item: any) => item.id)).toEqual([...ascending].reverse());
      expect((await carol.request("GET", `${path}?order=sideways`)).statusCode).toBe(400);
    }
  });

  it("shows until when a rotated key keeps signing", async () => {
    const created = await alice.request("POST", SUBSCRIPTIONS, {
      endpoint: "https://rotate.example/hooks",
      event_names: ["appointment.created"],
      signing_key: "the-first-key-of-24-chars",
    });
    const id = created.json().id;
    const before = (await alice.request("GET", `${SUBSCRIPTIONS}/${id}`)).json().data;
    expect(before.previous_key_expires_at).toBeNull();
    await alice.request("PATCH", `${SUBSCRIPTIONS}/${id}`, { signing_key: "the-second-key-of-24-chars" });
    const after = (await alice.request("GET", `${SUBSCRIPTIONS}/${id}`)).json().data;
    expect(Date.parse(after.previous_key_expires_at) - Date.now()).toBeGreaterThan(23 * 3600_000);
    await alice.request("PATCH", `${SUBSCRIPTIONS}/${id}`, { expire_previous_key: true });
    expect((await alice.request("GET", `${SUBSCRIPTIONS}/${id}`)).json().data.previous_key_expires_at).toBeNull();
  });
});

describe("portal links under the login rate limit", () => {
  let h: Harness;
  afterAll(async () => h?.close());

  it("refuses a fast stream of guessed tokens with 429", async () => {
    h = await startHarness("sqlite", { CAREHOOKS_LOGIN_RATE_LIMIT: "3" });
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++) {
      const guess = await h.app.inject({
        method: "POST",
        url: EXCHANGE,
        payload: { token: `chp_${"g".repeat(40)}${i}` },
      });
      statuses.push(guess.statusCode);
    }
    expect(statuses.slice(0, 3)).toEqual([401, 401, 401]);
    expect(statuses.slice(3)).toEqual([429, 429]);
  });
});
