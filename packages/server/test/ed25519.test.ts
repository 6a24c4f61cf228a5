/**
 * Ed25519 webhooks (`signature_scheme: "ed25519"`): the request carries
 * Standard Webhooks `v1a` signatures that an independent Ed25519
 * implementation (@noble/ed25519) verifies with the public key the API shows,
 * following the Standard Webhooks rules by hand; the SDK verifies them too; the
 * private key is never shown; rotation and a switch of scheme overlap.
 */

import { verifyWebhook } from "@carehooks/sdk";
import * as ed from "@noble/ed25519";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { dialects } from "./support/databases.js";
import { booking } from "./support/fixtures.js";
import { type Harness, LOCAL_DELIVERY_ENV, startHarness, type Tenant } from "./support/harness.js";
import { type Received, type Receiver, startReceiver } from "./support/receiver.js";

const WEBHOOKS = "/notification/v1/connect/webhook/subscriptions";
const APPOINTMENTS = "/dr/v1/business/appointments";
const PUBLIC_KEY = /^whpk_[A-Za-z0-9+/]{43}=$/;

/**
 * The Standard Webhooks verification rules, written out: the signed content is
 * `<webhook-id>.<webhook-timestamp>.<body>`; `webhook-signature` is a space-separated
 * list of `<version>,<base64>`; an asymmetric signature is version `v1a`; any
 * entry that verifies is enough; the timestamp must be within 5 minutes.
 */
async function standardWebhooksVerify(request: Received, publicKey: string): Promise<boolean> {
  const id = String(request.headers["webhook-id"]);
  const timestamp = Number(request.headers["webhook-timestamp"]);
  if (Math.abs(Date.now() / 1000 - timestamp) > 300) return false;
  const content = new TextEncoder().encode(`${id}.${timestamp}.${request.body}`);
  const key = Uint8Array.from(Buffer.from(publicKey.slice("whpk_".length), "base64"));
  for (const entry of String(request.headers["webhook-signature"]).split(" ")) {
    const [version, signature] = entry.split(",");
    if (version !== "v1a" || signature === undefined) continue;
    if (await ed.verifyAsync(Uint8Array.from(Buffer.from(signature, "base64")), content, key)) return true;
  }
  return false;
}

const versionsOf = (request: Received) =>
  String(request.headers["webhook-signature"])
    .split(" ")
    .map((entry) => entry.split(",")[0]);

describe.each(dialects())("ed25519 signatures on %s", (dialect) => {
  let h: Harness;
  let tenant: Tenant;
  let receiver: Receiver;

  beforeAll(async () => {
    h = await startHarness(dialect, { ...LOCAL_DELIVERY_ENV, CAREHOOKS_KEY_OVERLAP: "1h" }, { dispatcher: true });
    tenant = await h.tenant();
    receiver = await startReceiver();
  });
  afterAll(async () => {
    await h?.close();
    await receiver?.close();
  });

  async function nextRequest(): Promise<Received> {
    const count = receiver.received.length;
    const created = await tenant.request("POST", APPOINTMENTS, booking);
    expect(created.statusCode, created.body).toBe(201);
    return (await receiver.waitFor(count + 1, 10_000))[count] as Received;
  }

  it("signs with v1a only, verifiable with the public key by an independent implementation and the SDK", async () => {
    const created = await tenant.request("POST", WEBHOOKS, {
      endpoint: receiver.url,
      event_names: ["appointment.created"],
      signature_scheme: "ed25519",
    });
    expect(created.statusCode, created.body).toBe(201);
    const { id, public_key: publicKey, signing_key: shown } = created.json();
    expect(publicKey).toMatch(PUBLIC_KEY);
    expect(shown).toBeUndefined();
    const read = (await tenant.request("GET", `${WEBHOOKS}/${id}`)).json().data;
    expect(read).toMatchObject({ signed: true, signature_scheme: "ed25519", public_key: publicKey });
    expect(read.previous_public_key).toBeNull();

    const request = await nextRequest();
    expect(request.headers["eka-webhook-signature"]).toBeUndefined();
    expect(versionsOf(request)).toEqual(["v1a"]);
    expect(await standardWebhooksVerify(request, publicKey)).toBe(true);
    // A changed body or a different key does not verify.
    expect(await standardWebhooksVerify({ ...request, body: `${request.body} ` }, publicKey)).toBe(false);
    const other = (
      await tenant.request("POST", WEBHOOKS, {
        endpoint: `${receiver.url}?other`,
        event_names: ["prescription.created"],
        signature_scheme: "ed25519",
      })
    ).json().public_key;
    expect(await standardWebhooksVerify(request, other)).toBe(false);

    const event = verifyWebhook(request.body, request.headers as Record<string, string>, publicKey);
    expect(event.event).toBe("appointment.created");
    expect(() => verifyWebhook(request.body, request.headers as Record<string, string>, other)).toThrow(/signature/i);

    // The private key never leaves the server.
    const secret = await tenant.request("GET", `${WEBHOOKS}/${id}/secret`);
    expect(secret.statusCode).toBe(400);
    expect(secret.json().error.message).toMatch(/ed25519.*public_key/);
    const answers = [created.body, JSON.stringify(read), secret.body].join("");
    expect(answers).not.toContain("whsk_");

    await tenant.request("DELETE", `${WEBHOOKS}/${id}`);
  });

  it("rotates to a new pair and switches scheme with the replaced key signing through the overlap", async () => {
    const created = await tenant.request("POST", WEBHOOKS, {
      endpoint: receiver.url,
      event_names: ["appointment.created"],
      signature_scheme: "ed25519",
    });
    const { id, public_key: first } = created.json();

    const rotated = await tenant.request("PATCH", `${WEBHOOKS}/${id}`, { generate_signing_key: true });
    expect(rotated.statusCode, rotated.body).toBe(200);
    const second = rotated.json().public_key;
    expect(second).toMatch(PUBLIC_KEY);
    expect(second).not.toBe(first);
    expect((await tenant.request("GET", `${WEBHOOKS}/${id}`)).json().data).toMatchObject({
      public_key: second,
      previous_public_key: first,
    });
    const during = await nextRequest();
    expect(versionsOf(during)).toEqual(["v1a", "v1a"]);
    expect(await standardWebhooksVerify(during, first)).toBe(true);
    expect(await standardWebhooksVerify(during, second)).toBe(true);

    // To HMAC: a generated whsec_ key signs both headers, and the Ed25519 key still signs v1a meanwhile.
    const switched = await tenant.request("PATCH", `${WEBHOOKS}/${id}`, {
      signature_scheme: "hmac-sha256",
      generate_signing_key: true,
    });
    expect(switched.statusCode, switched.body).toBe(200);
    const hmacKey = switched.json().signing_key;
    expect(hmacKey).toMatch(/^whsec_/);
    const mixed = await nextRequest();
    expect(versionsOf(mixed)).toEqual(["v1", "v1a"]);
    expect(mixed.headers["eka-webhook-signature"]).toMatch(/^t=\d+,v1=[0-9a-f]{64}$/);
    expect(verifyWebhook(mixed.body, mixed.headers as Record<string, string>, hmacKey).event).toBe(
      "appointment.created",
    );
    expect(await standardWebhooksVerify(mixed, second)).toBe(true);
    expect((await tenant.request("GET", `${WEBHOOKS}/${id}`)).json().data).toMatchObject({
      signature_scheme: "hmac-sha256",
      public_key: null,
      previous_public_key: second,
    });
    // With the overlap ended, only the HMAC key signs.
    await tenant.request("PATCH", `${WEBHOOKS}/${id}`, { expire_previous_key: true });
    expect(versionsOf(await nextRequest())).toEqual(["v1"]);
    await tenant.request("DELETE", `${WEBHOOKS}/${id}`);
  });

  it("keeps an HMAC key stored before ed25519 existed that starts whsk_ an HMAC key", async () => {
    const created = await tenant.request("POST", WEBHOOKS, {
      endpoint: `${receiver.url}?legacy`,
      event_names: ["appointment.created"],
      signing_key: "an-ordinary-hmac-key",
    });
    const { id } = created.json();
    // As an older version accepted it: any printable key, this one shaped like a Standard Webhooks private key.
    const legacy = `whsk_${Buffer.alloc(32, 7).toString("base64")}`;
    await h.ctx.db
      .updateTable("subscription")
      .set({ signing_key: h.ctx.keyBox.seal(legacy) })
      .where("id", "=", id)
      .execute();
    const read = await tenant.request("GET", `${WEBHOOKS}/${id}`);
    expect(read.statusCode, read.body).toBe(200);
    expect(read.json().data).toMatchObject({ signature_scheme: "hmac-sha256", public_key: null });
    expect((await tenant.request("GET", WEBHOOKS)).statusCode).toBe(200);
    expect((await tenant.request("GET", `${WEBHOOKS}/${id}/secret`)).json().data.signing_key).toBe(legacy);
    const sent = await nextRequest();
    expect(sent.path).toContain("legacy");
    expect(versionsOf(sent)).toEqual(["v1"]);
    expect(verifyWebhook(sent.body, sent.headers as Record<string, string>, legacy).event).toBe("appointment.created");
    await tenant.request("DELETE", `${WEBHOOKS}/${id}`);
  });

  it("lets signing_key null make an ed25519 webhook unsigned", async () => {
    const { id } = (
      await tenant.request("POST", WEBHOOKS, {
        endpoint: `${receiver.url}?unsign`,
        event_names: ["prescription.created"],
        signature_scheme: "ed25519",
      })
    ).json();
    const changed = await tenant.request("PATCH", `${WEBHOOKS}/${id}`, { signing_key: null });
    expect(changed.statusCode, changed.body).toBe(200);
    expect((await tenant.request("GET", `${WEBHOOKS}/${id}`)).json().data).toMatchObject({
      signed: false,
      signature_scheme: null,
      public_key: null,
    });
    await tenant.request("DELETE", `${WEBHOOKS}/${id}`);
  });

  it("refuses keys that cannot go with the scheme", async () => {
    const refused = async (method: string, path: string, body: Record<string, unknown>, pattern: RegExp) => {
      const response = await tenant.request(method, path, body);
      expect(response.statusCode, response.body).toBe(400);
      expect(response.json().error.message).toMatch(pattern);
    };
    const base = { endpoint: "https://refused.example.com/hook", event_names: ["appointment.created"] };
    await refused("POST", WEBHOOKS, { ...base, signature_scheme: "ed25519", signing_key: "x".repeat(32) }, /generated/);
    await refused("POST", WEBHOOKS, { ...base, signing_key: `whsk_${"A".repeat(43)}=` }, /generated by carehooks/);
    await refused("POST", WEBHOOKS, { ...base, signature_scheme: "rsa" }, /signature_scheme/);
    const { id } = (await tenant.request("POST", WEBHOOKS, { ...base, signature_scheme: "ed25519" })).json();
    await refused("PATCH", `${WEBHOOKS}/${id}`, { signing_key: "y".repeat(32) }, /hmac-sha256 to switch/);
    await refused("PATCH", `${WEBHOOKS}/${id}`, { signature_scheme: "hmac-sha256" }, /needs a key/);
  });
});
