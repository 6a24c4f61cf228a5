import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { dialects } from "./support/databases.js";
import { type Harness, startHarness, type Tenant } from "./support/harness.js";

const BASE = "/notification/v1/connect/webhook/subscriptions";
const KEY = "a-signing-key-only-writers-see";
const WHSEC = /^whsec_[A-Za-z0-9+/]{43}=$/;

describe.each(dialects())("signing keys stay out of reads on %s", (dialect) => {
  let h: Harness;
  let writer: Tenant;
  let reader: Tenant;

  beforeAll(async () => {
    h = await startHarness(dialect, { CAREHOOKS_KEY_OVERLAP: "1h" });
    writer = await h.tenant();
    reader = await writer.colleague(["webhooks:read"]);
  });
  afterAll(async () => h?.close());

  async function create(body: Record<string, unknown>) {
    const response = await writer.request("POST", BASE, { event_names: ["appointment.created"], ...body });
    expect(response.statusCode, response.body).toBe(201);
    return response.json() as { id: string; status: string; signing_key?: string };
  }

  it("shows whether a webhook is signed, never the key, in lists, gets and state changes", async () => {
    const { id, signing_key } = await create({ endpoint: "https://kept.example.com/", signing_key: KEY });
    expect(signing_key).toBeUndefined();
    const answers = [
      await reader.request("GET", BASE),
      await reader.request("GET", `${BASE}/${id}`),
      await writer.request("POST", `${BASE}/${id}/disable`),
      await writer.request("POST", `${BASE}/${id}/enable`),
    ];
    for (const answer of answers) {
      expect(answer.statusCode).toBe(200);
      expect(answer.body).not.toContain(KEY);
      expect(answer.body).not.toContain("signing_key");
    }
    expect(answers[1]?.json().data).toMatchObject({ id, signed: true });
    const unsigned = await create({ endpoint: "https://unsigned.example.com/" });
    expect((await reader.request("GET", `${BASE}/${unsigned.id}`)).json().data.signed).toBe(false);
  });

  it("reveals a key only through /secret, and only to webhooks:write", async () => {
    const { id } = await create({ endpoint: "https://reveal.example.com/", signing_key: KEY });
    const denied = await reader.request("GET", `${BASE}/${id}/secret`);
    expect(denied.statusCode).toBe(403);
    expect(denied.json().error.code).toBe("FORBIDDEN");
    expect(denied.body).not.toContain(KEY);
    const shown = await writer.request("GET", `${BASE}/${id}/secret`);
    expect(shown.statusCode).toBe(200);
    expect(shown.json()).toEqual({
      data: { signing_key: KEY, previous_signing_key: null, previous_key_expires_at: null },
      msg: "success",
    });
    const other = await h.tenant();
    expect((await other.request("GET", `${BASE}/${id}/secret`)).statusCode).toBe(404);
    expect((await writer.request("GET", `${BASE}/wh_nosuch/secret`)).statusCode).toBe(404);
  });

  it("generates a key on create and on rotation, shown once in the answer", async () => {
    const created = await create({ endpoint: "https://generated.example.com/", generate_signing_key: true });
    expect(created.signing_key).toMatch(WHSEC);
    const get = await writer.request("GET", `${BASE}/${created.id}`);
    expect(get.body).not.toContain(created.signing_key);
    expect(get.json().data.signed).toBe(true);
    expect((await writer.request("GET", `${BASE}/${created.id}/secret`)).json().data.signing_key).toBe(
      created.signing_key,
    );

    const rotated = await writer.request("PATCH", `${BASE}/${created.id}`, { generate_signing_key: true });
    expect(rotated.statusCode).toBe(200);
    const next = rotated.json().signing_key as string;
    expect(next).toMatch(WHSEC);
    expect(next).not.toBe(created.signing_key);
    const secret = (await writer.request("GET", `${BASE}/${created.id}/secret`)).json().data;
    expect(secret).toMatchObject({ signing_key: next, previous_signing_key: created.signing_key });
    expect(Date.parse(secret.previous_key_expires_at)).toBeGreaterThan(Date.now());
    // An update that does not generate answers no key.
    const plain = await writer.request("PATCH", `${BASE}/${created.id}`, { event_names: ["appointment.updated"] });
    expect(plain.json()).toEqual({ status: "webhook updated successfully", msg: "success" });
  });

  it("refuses a key and a request to generate one together", async () => {
    const both = await writer.request("POST", BASE, {
      endpoint: "https://both.example.com/",
      event_names: ["appointment.created"],
      signing_key: KEY,
      generate_signing_key: true,
    });
    expect(both.statusCode).toBe(400);
    expect(both.json().error).toMatchObject({
      code: "INVALID_REQUEST",
      message: "give signing_key or generate_signing_key, not both",
    });
    const { id } = await create({ endpoint: "https://both-patch.example.com/" });
    const patch = await writer.request("PATCH", `${BASE}/${id}`, { signing_key: null, generate_signing_key: true });
    expect(patch.statusCode).toBe(400);
  });
});
