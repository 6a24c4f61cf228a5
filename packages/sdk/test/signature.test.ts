/**
 * Signature verification against the vectors shared with the server's signer
 * (packages/server/test/fixtures/signature-vectors.json, computed independently
 * with python), and one refusal per error class.
 */
import { readFileSync } from "node:fs";
import { Webhook as StandardWebhook } from "standardwebhooks";
import { describe, expect, it } from "vitest";
import {
  InvalidPayloadError,
  MalformedHeaderError,
  MissingHeaderError,
  NoMatchingSignatureError,
  signatureHeaders,
  TimestampOutOfToleranceError,
  verifySignature,
  verifyWebhook,
  WebhookVerificationError,
} from "../src/index.js";
import { checkKeys } from "../src/verify.js";

interface Vector {
  name: string;
  event_id: string;
  timestamp: number;
  body: string;
  keys: string[];
  headers: Record<string, string>;
}

const VECTORS = (
  JSON.parse(readFileSync(new URL("../../server/test/fixtures/signature-vectors.json", import.meta.url), "utf8")) as {
    cases: Vector[];
  }
).cases;
const SIGNED = VECTORS.filter((vector) => vector.keys.length > 0);

/** A clock stuck at `seconds` (Unix), in the milliseconds `now` takes. */
const at = (seconds: number) => () => seconds * 1000;

function only(headers: Record<string, string>, names: string[]): Record<string, string> {
  return Object.fromEntries(Object.entries(headers).filter(([name]) => names.includes(name)));
}

const EKA_ONLY = ["eka-webhook-signature"];
const STANDARD_ONLY = ["webhook-id", "webhook-timestamp", "webhook-signature"];

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error("expected a throw");
}

describe("shared signature vectors", () => {
  it("are present", () => {
    expect(SIGNED.length).toBeGreaterThanOrEqual(6);
  });

  for (const vector of SIGNED) {
    describe(vector.name, () => {
      const now = at(vector.timestamp);

      it("verifies with every key, through each header alone and through both", () => {
        for (const key of vector.keys) {
          for (const [scheme, names] of [
            ["eka", EKA_ONLY],
            ["standard", STANDARD_ONLY],
          ] as const) {
            const result = verifySignature(vector.body, only(vector.headers, names), key, { now });
            expect(result, `${scheme} with ${key}`).toMatchObject({ ok: true, scheme, timestamp: vector.timestamp });
          }
          const event = verifyWebhook(vector.body, vector.headers, key, { now });
          expect(event).toEqual(JSON.parse(vector.body));
        }
      });

      it("verifies the body as a Buffer and as a Uint8Array", () => {
        const key = vector.keys[0]!;
        const bytes = Buffer.from(vector.body, "utf8");
        expect(verifySignature(bytes, vector.headers, key, { now }).ok).toBe(true);
        expect(verifySignature(new Uint8Array(bytes), vector.headers, key, { now }).ok).toBe(true);
      });

      it("is what signatureHeaders produces", () => {
        expect(
          signatureHeaders({
            body: vector.body,
            webhookId: vector.event_id,
            timestamp: vector.timestamp,
            signingKey: vector.keys,
          }),
        ).toEqual(vector.headers);
      });

      it("rejects a one-byte change of the body through either header", () => {
        const tampered = vector.body.replace(/.$/, (last) => (last === "}" ? " }" : "}"));
        for (const names of [EKA_ONLY, STANDARD_ONLY]) {
          const result = verifySignature(tampered, only(vector.headers, names), vector.keys[0]!, { now });
          expect(result.ok).toBe(false);
          expect(!result.ok && result.error).toBeInstanceOf(NoMatchingSignatureError);
        }
      });
    });
  }

  it("the unsigned vector has no signature to verify", () => {
    const unsigned = VECTORS.find((vector) => vector.keys.length === 0)!;
    const error = thrown(() =>
      verifyWebhook(unsigned.body, unsigned.headers, "any-key-at-all-16", { now: at(unsigned.timestamp) }),
    );
    expect(error).toBeInstanceOf(MissingHeaderError);
  });

  it("signatureHeaders output is accepted by the standardwebhooks library", () => {
    const vector = SIGNED.find((v) => v.keys[0]!.startsWith("whsec_"))!;
    const nowSeconds = Math.floor(Date.now() / 1000);
    const headers = signatureHeaders({ body: vector.body, webhookId: vector.event_id, signingKey: vector.keys[0]! });
    expect(Number(headers["webhook-timestamp"])).toBeGreaterThanOrEqual(nowSeconds);
    expect(new StandardWebhook(vector.keys[0]!).verify(vector.body, headers)).toEqual(JSON.parse(vector.body));
  });
});

describe("refusals, each with its own error class", () => {
  const vector = SIGNED.find((v) => v.name === "plain key")!;
  const key = vector.keys[0]!;
  const now = at(vector.timestamp);

  it("tampered body: NoMatchingSignatureError", () => {
    const error = thrown(() => verifyWebhook(vector.body.replace("created", "deleted"), vector.headers, key, { now }));
    expect(error).toBeInstanceOf(NoMatchingSignatureError);
    expect(error).toBeInstanceOf(WebhookVerificationError);
    expect(error).toMatchObject({ code: "no_matching_signature", status: 400 });
  });

  it("re-serialised JSON: NoMatchingSignatureError", () => {
    const spaced = SIGNED.find((v) => v.name.startsWith("body whose spacing"))!;
    const reserialised = JSON.stringify(JSON.parse(spaced.body));
    expect(() => verifyWebhook(reserialised, spaced.headers, spaced.keys[0]!, { now: at(spaced.timestamp) })).toThrow(
      NoMatchingSignatureError,
    );
  });

  it("wrong key: NoMatchingSignatureError", () => {
    expect(() => verifyWebhook(vector.body, vector.headers, "carehooks-plain-signing-key-02", { now })).toThrow(
      NoMatchingSignatureError,
    );
    expect(() => verifyWebhook(vector.body, vector.headers, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", { now })).toThrow(
      NoMatchingSignatureError,
    );
  });

  it("stale and future timestamps: TimestampOutOfToleranceError (default tolerance 300 s)", () => {
    const stale = thrown(() => verifyWebhook(vector.body, vector.headers, key, { now: at(vector.timestamp + 301) }));
    expect(stale).toBeInstanceOf(TimestampOutOfToleranceError);
    expect(stale).toMatchObject({
      code: "timestamp_out_of_tolerance",
      timestamp: vector.timestamp,
      now: vector.timestamp + 301,
      toleranceSeconds: 300,
    });
    expect(() => verifyWebhook(vector.body, vector.headers, key, { now: at(vector.timestamp - 301) })).toThrow(
      TimestampOutOfToleranceError,
    );
    // At the edge, and with a wider tolerance, it passes.
    expect(verifyWebhook(vector.body, vector.headers, key, { now: at(vector.timestamp + 300) })).toBeTruthy();
    expect(
      verifyWebhook(vector.body, vector.headers, key, { now: at(vector.timestamp + 3000), toleranceSeconds: 3600 }),
    ).toBeTruthy();
    expect(() =>
      verifyWebhook(vector.body, vector.headers, key, { now: at(vector.timestamp + 11), toleranceSeconds: 10 }),
    ).toThrow(TimestampOutOfToleranceError);
  });

  it("a stale request with a bad signature is refused for the signature, not the time", () => {
    expect(() => verifyWebhook(`${vector.body} `, vector.headers, key, { now: at(vector.timestamp + 10_000) })).toThrow(
      NoMatchingSignatureError,
    );
  });

  it("the real clock is the default: a vector from the past is stale now", () => {
    expect(() => verifyWebhook(vector.body, vector.headers, key)).toThrow(TimestampOutOfToleranceError);
  });

  it("missing headers: MissingHeaderError", () => {
    const none = thrown(() => verifyWebhook(vector.body, {}, key, { now }));
    expect(none).toBeInstanceOf(MissingHeaderError);
    expect(none).toMatchObject({ code: "missing_header", headers: ["eka-webhook-signature", "webhook-signature"] });
    expect(() => verifyWebhook(vector.body, { "eka-webhook-signature": "  " }, key, { now })).toThrow(
      MissingHeaderError,
    );
    const noId = thrown(() =>
      verifyWebhook(vector.body, only(vector.headers, ["webhook-timestamp", "webhook-signature"]), key, { now }),
    );
    expect(noId).toBeInstanceOf(MissingHeaderError);
    expect(noId).toMatchObject({ headers: ["webhook-id"] });
    const noTime = thrown(() =>
      verifyWebhook(vector.body, only(vector.headers, ["webhook-id", "webhook-signature"]), key, { now }),
    );
    expect(noTime).toMatchObject({ headers: ["webhook-timestamp"] });
  });

  it("malformed headers: MalformedHeaderError", () => {
    const mac = vector.headers["eka-webhook-signature"]!.split("v1=")[1]!;
    for (const header of [
      `v1=${mac}`, // no t=
      `t=${vector.timestamp}`, // no v1=
      `t=soon,v1=${mac}`,
      `t=${vector.timestamp},t=${vector.timestamp + 1},v1=${mac}`,
      "garbage",
    ]) {
      const error = thrown(() => verifyWebhook(vector.body, { "eka-webhook-signature": header }, key, { now }));
      expect(error, header).toBeInstanceOf(MalformedHeaderError);
      expect(error).toMatchObject({ code: "malformed_header", header: "eka-webhook-signature" });
    }
    const standard = only(vector.headers, STANDARD_ONLY);
    const noV1 = thrown(() => verifyWebhook(vector.body, { ...standard, "webhook-signature": "v2,abc" }, key, { now }));
    expect(noV1).toMatchObject({ code: "malformed_header", header: "webhook-signature" });
    const badTime = thrown(() =>
      verifyWebhook(vector.body, { ...standard, "webhook-timestamp": "yesterday" }, key, { now }),
    );
    expect(badTime).toMatchObject({ code: "malformed_header", header: "webhook-timestamp" });
  });

  it("a malformed v1 entry next to a good one does not spoil it; unknown schemes are ignored", () => {
    const good = vector.headers["eka-webhook-signature"]!;
    const header = `${good},v1=zz-not-hex,v2=${"0".repeat(64)},foo`;
    expect(verifyWebhook(vector.body, { "eka-webhook-signature": header }, key, { now })).toBeTruthy();
    const standard = only(vector.headers, STANDARD_ONLY);
    const list = `v1a,xyz v1,AAAA ${standard["webhook-signature"]}`;
    expect(verifyWebhook(vector.body, { ...standard, "webhook-signature": list }, key, { now })).toBeTruthy();
  });

  it("reads a signature only as strict base64 of its exact length", () => {
    const standard = only(vector.headers, STANDARD_ONLY);
    const [version, mac] = standard["webhook-signature"]!.split(",") as [string, string];
    // Buffer.from(…, "base64") would skip the stray characters and decode the same bytes.
    const dirty = `${version},${mac.slice(0, 10)}!!!${mac.slice(10)}`;
    expect(() => verifyWebhook(vector.body, { ...standard, "webhook-signature": dirty }, key, { now })).toThrow(
      NoMatchingSignatureError,
    );
    const unpadded = `${version},${mac.replace(/=+$/, "")}`;
    expect(() => verifyWebhook(vector.body, { ...standard, "webhook-signature": unpadded }, key, { now })).toThrow(
      NoMatchingSignatureError,
    );
  });

  it("takes a key of another form than whpk_ + 32 bytes as an HMAC key, and a whsk_ key too", () => {
    // Keys registered before ed25519 existed may look like either; they stay HMAC keys.
    expect(() => checkKeys(["whpk_not-a-public-key", "whsk_an-older-hmac-key"])).not.toThrow();
    expect(() => checkKeys(`whpk_${Buffer.alloc(31).toString("base64")}`)).not.toThrow();
  });

  it("a verified body that is not a JSON object: InvalidPayloadError", () => {
    for (const body of ["not json", "[1,2]", "null"]) {
      const headers = signatureHeaders({ body, webhookId: "evt_x", timestamp: vector.timestamp, signingKey: key });
      expect(() => verifyWebhook(body, headers, key, { now }), body).toThrow(InvalidPayloadError);
      expect(verifySignature(body, headers, key, { now }).ok).toBe(true);
    }
  });

  it("verifySignature returns the error instead of throwing it", () => {
    const result = verifySignature("{}", vector.headers, key, { now });
    expect(result.ok).toBe(false);
    expect(!result.ok && result.error.code).toBe("no_matching_signature");
  });

  it("an empty key is a programming error, not a refusal", () => {
    expect(() => verifyWebhook(vector.body, vector.headers, "", { now })).toThrow(TypeError);
    expect(() => verifyWebhook(vector.body, vector.headers, [], { now })).toThrow(TypeError);
    expect(() => verifyWebhook(vector.body, vector.headers, "whsec_", { now })).toThrow(TypeError);
    expect(() => verifyWebhook({} as never, vector.headers, key, { now })).toThrow(TypeError);
  });
});

describe("headers and keys", () => {
  const rotation = SIGNED.find((v) => v.name.startsWith("two keys"))!;
  const now = at(rotation.timestamp);

  it("header names are case-insensitive, in a record and in fetch Headers", () => {
    const shouting = Object.fromEntries(
      Object.entries(rotation.headers).map(([name, value]) => [name.toUpperCase(), value]),
    );
    expect(verifyWebhook(rotation.body, shouting, rotation.keys[1]!, { now })).toBeTruthy();
    const mixed = { "Eka-Webhook-Signature": rotation.headers["eka-webhook-signature"]! };
    expect(verifyWebhook(rotation.body, mixed, rotation.keys[0]!, { now })).toBeTruthy();
    expect(verifyWebhook(rotation.body, new Headers(rotation.headers), rotation.keys[0]!, { now })).toBeTruthy();
  });

  it("during a rotation either key verifies (any matching v1 entry passes)", () => {
    for (const key of rotation.keys) {
      expect(verifySignature(rotation.body, only(rotation.headers, EKA_ONLY), key, { now }).ok).toBe(true);
      expect(verifySignature(rotation.body, only(rotation.headers, STANDARD_ONLY), key, { now }).ok).toBe(true);
    }
  });

  it("the receiver may hold several keys itself", () => {
    const single = SIGNED.find((v) => v.name === "plain key")!;
    const keys = ["an-old-key-that-no-longer-signs", single.keys[0]!];
    expect(verifyWebhook(single.body, single.headers, keys, { now: at(single.timestamp) })).toBeTruthy();
  });

  it("headers given as arrays (repeated headers) are all considered", () => {
    const [newEntry, oldEntry] = rotation.headers["webhook-signature"]!.split(" ");
    const headers = {
      "webhook-id": [rotation.event_id],
      "webhook-timestamp": String(rotation.timestamp),
      "webhook-signature": [`v1,${"A".repeat(44)}`, oldEntry!],
    };
    expect(newEntry).toBeTruthy();
    expect(verifySignature(rotation.body, headers, rotation.keys[1]!, { now })).toMatchObject({
      ok: true,
      scheme: "standard",
      webhookId: rotation.event_id,
    });
  });

  it("when both headers are sent and one verifies, the request passes", () => {
    const broken = { ...rotation.headers, "eka-webhook-signature": `t=${rotation.timestamp},v1=${"0".repeat(64)}` };
    expect(verifySignature(rotation.body, broken, rotation.keys[0]!, { now })).toMatchObject({
      ok: true,
      scheme: "standard",
    });
  });
});
