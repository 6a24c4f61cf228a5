import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { findSubscription } from "../src/store/subscriptions.js";
import { dialects } from "./support/databases.js";
import { type Harness, startHarness, type Tenant } from "./support/harness.js";

const BASE = "/notification/v1/connect/webhook/subscriptions";
const KEY = "a-signing-key-of-24-chars";

describe.each(dialects())("webhook subscriptions on %s", (dialect) => {
  let h: Harness;
  let alice: Tenant;

  beforeAll(async () => {
    h = await startHarness(dialect, { CAREHOOKS_KEY_OVERLAP: "1h" });
    alice = await h.tenant();
  });
  afterAll(async () => h?.close());

  async function register(tenant: Tenant, body: Record<string, unknown>) {
    const response = await tenant.request("POST", BASE, body);
    expect(response.statusCode, response.body).toBe(201);
    return response.json().id as string;
  }

  it("runs the whole lifecycle with Eka-compatible answers", async () => {
    const created = await alice.request("POST", BASE, {
      endpoint: "https://receiver.example.com/hooks",
      event_names: ["appointment.created", "prescription.created"],
      signing_key: KEY,
    });
    expect(created.statusCode).toBe(201);
    const { id, status } = created.json();
    expect(status).toBe("success");
    expect(id).toMatch(/^wh_[0-9A-Z]{26}$/);

    const one = await alice.request("GET", `${BASE}/${id}`);
    expect(one.statusCode).toBe(200);
    const webhook = one.json().data;
    expect(one.json().msg).toBe("success");
    expect(webhook).toMatchObject({
      id,
      endpoint: "https://receiver.example.com/hooks",
      event_names: ["appointment.created", "prescription.created"],
      signed: true,
      protocol: "https",
      client_id: alice.clientId,
      state: "active",
      state_reason: null,
      created_by: alice.clientId,
      updated_by: alice.clientId,
    });
    expect(webhook.created_at).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/);

    const updated = await alice.request("PATCH", `${BASE}/${id}`, { event_names: ["appointment.updated"] });
    expect(updated.json()).toEqual({ status: "webhook updated successfully", msg: "success" });
    expect((await alice.request("GET", `${BASE}/${id}`)).json().data.event_names).toEqual(["appointment.updated"]);

    const disabled = await alice.request("POST", `${BASE}/${id}/disable`);
    expect(disabled.json().data).toMatchObject({ state: "disabled", state_reason: `disabled by ${alice.clientId}` });
    const enabled = await alice.request("POST", `${BASE}/${id}/enable`);
    expect(enabled.json().data).toMatchObject({ state: "active", state_reason: null });

    const deleted = await alice.request("DELETE", `${BASE}/${id}`);
    expect(deleted.json()).toEqual({ status: "webhook deleted successfully", msg: "success" });
    const gone = await alice.request("GET", `${BASE}/${id}`);
    expect(gone.statusCode).toBe(404);
    expect(gone.json().error).toMatchObject({ code: "NOT_FOUND", message: "Webhook not found" });
    expect((await alice.request("DELETE", `${BASE}/${id}`)).statusCode).toBe(404);
  });

  it("stores the signing key encrypted, never in the clear", async () => {
    const id = await register(alice, {
      endpoint: "https://sealed.example.com/",
      event_names: ["appointment.created"],
      signing_key: KEY,
    });
    const row = await findSubscription(h.ctx.db, alice.businessId, id);
    expect(row?.signing_key).toMatch(/^v1\.[0-9a-f]{12}\./);
    expect(row?.signing_key).not.toContain(KEY);
  });

  it("accepts scopes and scope as aliases of event_names", async () => {
    const a = await register(alice, { endpoint: "https://alias-a.example.com/", scopes: ["appointment.created"] });
    const b = await register(alice, { endpoint: "https://alias-b.example.com/", scope: "prescription.updated" });
    expect((await alice.request("GET", `${BASE}/${a}`)).json().data.event_names).toEqual(["appointment.created"]);
    expect((await alice.request("GET", `${BASE}/${b}`)).json().data.event_names).toEqual(["prescription.updated"]);
  });

  it("refuses the same normalised endpoint twice in one business, but not across businesses", async () => {
    await register(alice, { endpoint: "https://dup.example.com/path", event_names: ["appointment.created"] });
    const again = await alice.request("POST", BASE, {
      endpoint: "HTTPS://DUP.example.com:443/path",
      event_names: ["appointment.updated"],
    });
    expect(again.statusCode).toBe(400);
    expect(again.json().error.code).toBe("INVALID_REQUEST");
    expect(again.json().error.message).toMatch(/already registered/);

    const bob = await h.tenant();
    await register(bob, { endpoint: "https://dup.example.com/path", event_names: ["appointment.created"] });
  });

  it("treats a fragment or a trailing dot as the same endpoint, and stores the normalised form", async () => {
    const id = await register(alice, {
      endpoint: "HTTPS://Norm.Example.com:443/x#frag",
      event_names: ["appointment.created"],
    });
    expect((await alice.request("GET", `${BASE}/${id}`)).json().data.endpoint).toBe("https://norm.example.com/x");
    for (const endpoint of ["https://norm.example.com/x#other", "https://norm.example.com./x"]) {
      expect((await alice.request("POST", BASE, { endpoint, event_names: ["appointment.created"] })).statusCode).toBe(
        400,
      );
    }
  });

  it("refuses unknown fields on action POSTs", async () => {
    const id = await register(alice, {
      endpoint: "https://strict-actions.example.com/",
      event_names: ["appointment.created"],
    });
    const response = await alice.request("POST", `${BASE}/${id}/disable`, { reason: "x" });
    expect(response.statusCode).toBe(400);
  });

  it("allows an endpoint again after its subscription is deleted", async () => {
    const body = { endpoint: "https://reuse.example.com/", event_names: ["appointment.created"] };
    const id = await register(alice, body);
    await alice.request("DELETE", `${BASE}/${id}`);
    await register(alice, body);
  });

  it("refuses a PATCH that would duplicate another endpoint", async () => {
    await register(alice, { endpoint: "https://one.example.com/", event_names: ["appointment.created"] });
    const two = await register(alice, { endpoint: "https://two.example.com/", event_names: ["appointment.created"] });
    const clash = await alice.request("PATCH", `${BASE}/${two}`, { endpoint: "https://ONE.example.com/" });
    expect(clash.statusCode).toBe(400);
  });

  const invalid: [string, Record<string, unknown>, RegExp][] = [
    ["missing endpoint", { event_names: ["appointment.created"] }, /missing "endpoint"/],
    ["missing event names", { endpoint: "https://x.example.com/" }, /event_names/],
    ["empty event names", { endpoint: "https://x.example.com/", event_names: [] }, /at least one event/],
    ["unknown event", { endpoint: "https://x.example.com/", event_names: ["appointment.deleted"] }, /unknown event/],
    [
      "both names and alias",
      { endpoint: "https://x.example.com/", event_names: ["appointment.created"], scopes: ["appointment.created"] },
      /only once/,
    ],
    ["relative URL", { endpoint: "/hooks", event_names: ["appointment.created"] }, /absolute/],
    ["ftp URL", { endpoint: "ftp://x.example.com/", event_names: ["appointment.created"] }, /http/],
    ["plain http", { endpoint: "http://x.example.com/", event_names: ["appointment.created"] }, /https/],
    ["credentials", { endpoint: "https://u:p@x.example.com/", event_names: ["appointment.created"] }, /credentials/],
    [
      "too long",
      { endpoint: `https://x.example.com/${"a".repeat(2040)}`, event_names: ["appointment.created"] },
      /2048/,
    ],
    ["loopback", { endpoint: "https://127.0.0.1/", event_names: ["appointment.created"] }, /refused range/],
    ["decimal loopback", { endpoint: "https://2130706433/", event_names: ["appointment.created"] }, /refused range/],
    ["octal loopback", { endpoint: "https://0177.0.0.1/", event_names: ["appointment.created"] }, /refused range/],
    ["hex loopback", { endpoint: "https://0x7f.0.0.1/", event_names: ["appointment.created"] }, /refused range/],
    [
      "mapped IPv6 loopback",
      { endpoint: "https://[::ffff:127.0.0.1]/", event_names: ["appointment.created"] },
      /refused range/,
    ],
    ["private", { endpoint: "https://10.1.2.3/", event_names: ["appointment.created"] }, /refused range/],
    ["metadata", { endpoint: "https://169.254.169.254/latest", event_names: ["appointment.created"] }, /refused range/],
    ["CGNAT", { endpoint: "https://100.64.0.1/", event_names: ["appointment.created"] }, /refused range/],
    ["IPv6 unique local", { endpoint: "https://[fd00::1]/", event_names: ["appointment.created"] }, /refused range/],
    ["localhost", { endpoint: "https://localhost/", event_names: ["appointment.created"] }, /refused/],
    [
      "protocol mismatch",
      { endpoint: "https://x.example.com/", event_names: ["appointment.created"], protocol: "http" },
      /does not match/,
    ],
    [
      "short key",
      { endpoint: "https://x.example.com/", event_names: ["appointment.created"], signing_key: "short" },
      /16 to 256/,
    ],
    [
      "key with spaces",
      {
        endpoint: "https://x.example.com/",
        event_names: ["appointment.created"],
        signing_key: "has spaces in the key",
      },
      /printable/,
    ],
    [
      "long key",
      { endpoint: "https://x.example.com/", event_names: ["appointment.created"], signing_key: "k".repeat(257) },
      /256/,
    ],
    [
      "bad whsec key",
      {
        endpoint: "https://x.example.com/",
        event_names: ["appointment.created"],
        signing_key: "whsec_not*base64*at*all",
      },
      /base64/,
    ],
    [
      "short whsec key",
      {
        endpoint: "https://x.example.com/",
        event_names: ["appointment.created"],
        signing_key: `whsec_${Buffer.alloc(16).toString("base64")}`,
      },
      /24 to 64 bytes/,
    ],
    [
      "unknown field",
      { endpoint: "https://x.example.com/", event_names: ["appointment.created"], secret: "x" },
      /unknown field "secret"/,
    ],
    ["wrong type", { endpoint: 42, event_names: ["appointment.created"] }, /endpoint/],
    ["non-object body", ["https://x.example.com/"], /object/],
  ];

  it.each(invalid)("answers 400 for %s", async (_name, body, message) => {
    const response = await alice.request("POST", BASE, body);
    expect(response.statusCode, response.body).toBe(400);
    const error = response.json().error;
    expect(error.code).toBe("INVALID_REQUEST");
    expect(error.message).toMatch(message);
    expect(error.request_id).toMatch(/^req_/);
  });

  it("accepts a whsec_ key of 32 bytes and a 256-character key", async () => {
    await register(alice, {
      endpoint: "https://whsec.example.com/",
      event_names: ["appointment.created"],
      signing_key: `whsec_${Buffer.alloc(32, 7).toString("base64")}`,
    });
    await register(alice, {
      endpoint: "https://longkey.example.com/",
      event_names: ["appointment.created"],
      signing_key: "k".repeat(256),
    });
  });

  it("keeps the replaced key for the overlap, or drops it when asked", async () => {
    const id = await register(alice, {
      endpoint: "https://rotate.example.com/",
      event_names: ["appointment.created"],
      signing_key: KEY,
    });
    const before = Date.now();
    await alice.request("PATCH", `${BASE}/${id}`, { signing_key: "the-next-signing-key-00" });
    let row = await findSubscription(h.ctx.db, alice.businessId, id);
    expect(h.ctx.keyBox.open(row?.signing_key as string)).toBe("the-next-signing-key-00");
    expect(h.ctx.keyBox.open(row?.previous_signing_key as string)).toBe(KEY);
    expect(row?.previous_key_expires_at).toBeGreaterThanOrEqual(before + 3_600_000);

    await alice.request("PATCH", `${BASE}/${id}`, { expire_previous_key: true });
    row = await findSubscription(h.ctx.db, alice.businessId, id);
    expect(row?.previous_signing_key).toBeNull();

    await alice.request("PATCH", `${BASE}/${id}`, { signing_key: "a-third-signing-key-0" });
    await alice.request("PATCH", `${BASE}/${id}`, { signing_key: null });
    expect((await alice.request("GET", `${BASE}/${id}`)).json().data.signed).toBe(false);
    // Removing the key means unsigned now: the replaced key does not keep signing.
    row = await findSubscription(h.ctx.db, alice.businessId, id);
    expect(row?.previous_signing_key).toBeNull();
  });

  it("refuses an empty PATCH and validates a changed endpoint", async () => {
    const id = await register(alice, { endpoint: "https://patch.example.com/", event_names: ["appointment.created"] });
    expect((await alice.request("PATCH", `${BASE}/${id}`, {})).statusCode).toBe(400);
    const bad = await alice.request("PATCH", `${BASE}/${id}`, { endpoint: "https://192.168.1.1/" });
    expect(bad.statusCode).toBe(400);
    const moved = await alice.request("PATCH", `${BASE}/${id}`, { endpoint: "https://moved.example.com/new" });
    expect(moved.statusCode).toBe(200);
    expect((await alice.request("GET", `${BASE}/${id}`)).json().data.endpoint).toBe("https://moved.example.com/new");
    expect(
      (await alice.request("PATCH", `${BASE}/wh_01M8JAEKFKDB98QNJMQES87XB4`, { event_names: ["appointment.created"] }))
        .statusCode,
    ).toBe(404);
  });

  it("pages through a list with a cursor", async () => {
    const carol = await h.tenant();
    const ids: string[] = [];
    for (let i = 0; i < 7; i++) {
      ids.push(
        await register(carol, { endpoint: `https://page-${i}.example.com/`, event_names: ["appointment.created"] }),
      );
    }
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const query: string = cursor ? `?limit=3&cursor=${cursor}` : "?limit=3";
      const response = await carol.request("GET", `${BASE}${query}`);
      expect(response.statusCode).toBe(200);
      const page = response.json();
      expect(page.msg).toBe("success");
      seen.push(...page.data.map((w: { id: string }) => w.id));
      cursor = page.next_cursor;
      pages += 1;
    } while (cursor);
    expect(pages).toBe(3);
    expect(seen).toEqual(ids);
    expect((await carol.request("GET", `${BASE}?limit=0`)).statusCode).toBe(400);
    expect((await carol.request("GET", `${BASE}?limit=501`)).statusCode).toBe(400);
    expect((await carol.request("GET", `${BASE}?cursor=garbage`)).statusCode).toBe(400);
  });

  it("isolates businesses: another business's webhook is not found, never listed, never changed", async () => {
    const id = await register(alice, {
      endpoint: "https://private.example.com/",
      event_names: ["appointment.created"],
    });
    const mallory = await h.tenant();
    expect((await mallory.request("GET", `${BASE}/${id}`)).statusCode).toBe(404);
    expect((await mallory.request("PATCH", `${BASE}/${id}`, { event_names: ["appointment.updated"] })).statusCode).toBe(
      404,
    );
    expect((await mallory.request("DELETE", `${BASE}/${id}`)).statusCode).toBe(404);
    expect((await mallory.request("POST", `${BASE}/${id}/disable`)).statusCode).toBe(404);
    expect((await mallory.request("POST", `${BASE}/${id}/enable`)).statusCode).toBe(404);
    const list = (await mallory.request("GET", BASE)).json();
    expect(list.data.map((w: { id: string }) => w.id)).not.toContain(id);
    const still = (await alice.request("GET", `${BASE}/${id}`)).json().data;
    expect(still).toMatchObject({ state: "active", event_names: ["appointment.created"] });
  });

  it("shares webhooks among clients of one business", async () => {
    const id = await register(alice, { endpoint: "https://shared.example.com/", event_names: ["appointment.created"] });
    const colleague = await alice.colleague(["webhooks:read", "webhooks:write"]);
    expect((await colleague.request("GET", `${BASE}/${id}`)).statusCode).toBe(200);
    await colleague.request("PATCH", `${BASE}/${id}`, { event_names: ["prescription.created"] });
    const webhook = (await alice.request("GET", `${BASE}/${id}`)).json().data;
    expect(webhook).toMatchObject({ created_by: alice.clientId, updated_by: colleague.clientId });
  });

  it("enforces scopes: 403 without webhooks:write or webhooks:read", async () => {
    const reader = await alice.colleague(["webhooks:read"]);
    const denied = await reader.request("POST", BASE, {
      endpoint: "https://r.example.com/",
      event_names: ["appointment.created"],
    });
    expect(denied.statusCode).toBe(403);
    expect(denied.json().error.code).toBe("FORBIDDEN");
    expect((await reader.request("GET", BASE)).statusCode).toBe(200);

    const writer = await alice.colleague(["webhooks:write"]);
    expect((await writer.request("GET", BASE)).statusCode).toBe(403);
    const none = await alice.colleague(["appointments:read"]);
    for (const [method, url] of [
      ["GET", BASE],
      ["POST", BASE],
      ["GET", `${BASE}/wh_x`],
      ["PATCH", `${BASE}/wh_x`],
      ["DELETE", `${BASE}/wh_x`],
      ["POST", `${BASE}/wh_x/enable`],
    ] as const) {
      expect(
        (await none.request(method, url, method === "POST" || method === "PATCH" ? {} : undefined)).statusCode,
      ).toBe(403);
    }
  });

  it("publishes the configured source IPs without authentication", async () => {
    const response = await h.app.inject({ method: "GET", url: "/notification/v1/connect/webhook/source-ips" });
    expect(response.json()).toEqual({ data: [], msg: "success" });
  });
});

describe("operator allow-list", () => {
  it("lets CAREHOOKS_ALLOW_HTTP and CAREHOOKS_ALLOWED_TARGETS admit a local receiver", async () => {
    const h = await startHarness("sqlite", {
      CAREHOOKS_ALLOW_HTTP: "true",
      CAREHOOKS_ALLOWED_TARGETS: "127.0.0.0/8",
      CAREHOOKS_SOURCE_IPS: "203.0.113.7,2001:db8::7",
    });
    try {
      const tenant = await h.tenant();
      const ok = await tenant.request("POST", BASE, {
        endpoint: "http://127.0.0.1:9999/hook",
        event_names: ["appointment.created"],
      });
      expect(ok.statusCode, ok.body).toBe(201);
      const stillPrivate = await tenant.request("POST", BASE, {
        endpoint: "http://10.0.0.1/hook",
        event_names: ["appointment.created"],
      });
      expect(stillPrivate.statusCode).toBe(400);
      const ips = await h.app.inject({ method: "GET", url: "/notification/v1/connect/webhook/source-ips" });
      expect(ips.json().data).toEqual(["203.0.113.7", "2001:db8::7"]);
    } finally {
      await h.close();
    }
  });
});
