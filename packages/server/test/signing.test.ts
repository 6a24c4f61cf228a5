import { readFileSync } from "node:fs";
import { Webhook as StandardWebhook } from "standardwebhooks";
import { Webhook as SvixWebhook } from "svix";
import { describe, expect, it } from "vitest";
import {
  ekaSignature,
  type SignInput,
  signatureHeaders,
  standardSignature,
  verifyEkaSignature,
} from "../src/domain/signing.js";

/** One case of test/fixtures/signature-vectors.json, whose expected values were computed outside this code base. */
interface Vector {
  readonly name: string;
  readonly event_id: string;
  readonly timestamp: number;
  readonly body: string;
  readonly keys: readonly string[];
  readonly headers: Readonly<Record<string, string>>;
}

const VECTORS = (
  JSON.parse(readFileSync(new URL("./fixtures/signature-vectors.json", import.meta.url), "utf8")) as {
    cases: Vector[];
  }
).cases;

const PLAIN_KEY = "carehooks-plain-signing-key-01";
const WHSEC_KEY = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const OTHER_WHSEC_KEY = "whsec_oaS/oRNU9EcNaM37JgEVYE2mBZWg10nj5HELdleBvN8=";

function vector(name: string): Vector {
  const found = VECTORS.find((v) => v.name === name);
  if (!found) throw new Error(`no vector named ${name}`);
  return found;
}

function inputOf(v: Vector): SignInput {
  return { eventId: v.event_id, timestamp: v.timestamp, body: v.body, keys: v.keys };
}

const nowSeconds = (): number => Math.floor(Date.now() / 1000);

describe("signature vectors", () => {
  it("cover the cases the contract cares about", () => {
    expect(VECTORS.length).toBeGreaterThanOrEqual(5);
    expect(VECTORS.some((v) => v.keys.length === 1 && !v.keys[0]?.startsWith("whsec_"))).toBe(true);
    expect(VECTORS.some((v) => v.keys.length === 1 && v.keys[0]?.startsWith("whsec_"))).toBe(true);
    expect(VECTORS.some((v) => v.keys.length === 2)).toBe(true);
    expect(VECTORS.some((v) => Buffer.byteLength(v.body, "utf8") > v.body.length)).toBe(true);
    expect(VECTORS.some((v) => v.body === "{}")).toBe(true);
    expect(VECTORS.some((v) => v.keys.length === 0)).toBe(true);
  });

  it.each(VECTORS.map((v) => [v.name, v] as const))(
    "%s: signatureHeaders gives exactly the expected headers",
    (_, v) => {
      expect(signatureHeaders(inputOf(v))).toStrictEqual(v.headers);
    },
  );

  it.each(VECTORS.filter((v) => v.keys.length > 0).map((v) => [v.name, v] as const))(
    "%s: each key's MACs are the entries in key order",
    (_, v) => {
      const eka = v.keys.map((key) => `v1=${ekaSignature(key, v.timestamp, v.body)}`);
      const standard = v.keys.map((key) => `v1,${standardSignature(key, v.event_id, v.timestamp, v.body)}`);
      expect(v.headers["eka-webhook-signature"]).toBe([`t=${v.timestamp}`, ...eka].join(","));
      expect(v.headers["webhook-signature"]).toBe(standard.join(" "));
    },
  );
});

describe("signatureHeaders", () => {
  it("sends no signature headers without a key", () => {
    const headers = signatureHeaders({ eventId: "evt_1", timestamp: 1_796_082_010, body: "{}", keys: [] });
    expect(headers).toStrictEqual({ "webhook-id": "evt_1", "webhook-timestamp": "1796082010" });
  });

  it("puts the same timestamp in both signature headers and the timestamp header", () => {
    const headers = signatureHeaders({ eventId: "evt_1", timestamp: 1_796_082_010, body: "{}", keys: [PLAIN_KEY] });
    expect(headers["webhook-timestamp"]).toBe("1796082010");
    expect(headers["eka-webhook-signature"]).toMatch(/^t=1796082010,v1=[0-9a-f]{64}$/);
    expect(headers["webhook-signature"]).toMatch(/^v1,[A-Za-z0-9+/]{43}=$/);
  });

  it("signs the body as given: equivalent JSON with other spacing signs differently", () => {
    const a = signatureHeaders({ eventId: "evt_1", timestamp: 1, body: '{"a":1}', keys: [PLAIN_KEY] });
    const b = signatureHeaders({ eventId: "evt_1", timestamp: 1, body: '{"a": 1}', keys: [PLAIN_KEY] });
    expect(a["eka-webhook-signature"]).not.toBe(b["eka-webhook-signature"]);
    expect(a["webhook-signature"]).not.toBe(b["webhook-signature"]);
  });

  it("refuses a timestamp that is not whole Unix seconds, and an empty key", () => {
    for (const timestamp of [1_796_082_010.5, -1, Number.NaN, Date.now() * 1e6]) {
      expect(() => signatureHeaders({ eventId: "evt_1", timestamp, body: "{}", keys: [PLAIN_KEY] })).toThrow(
        RangeError,
      );
    }
    expect(() => signatureHeaders({ eventId: "evt_1", timestamp: 1, body: "{}", keys: [""] })).toThrow(RangeError);
  });
});

describe("third-party Standard Webhooks verifiers accept our headers", () => {
  const body = '{"event":"appointment.created","data":{"appointment_id":"apt_1","patient_name":"Zoë"}}';

  const cases: ReadonlyArray<readonly [string, readonly string[], string]> = [
    ["one whsec_ key", [WHSEC_KEY], WHSEC_KEY],
    ["two keys, the receiver holding the new one", [WHSEC_KEY, OTHER_WHSEC_KEY], WHSEC_KEY],
    ["two keys, the receiver holding the previous one", [OTHER_WHSEC_KEY, WHSEC_KEY], WHSEC_KEY],
    ["a plain key first, the receiver holding the whsec_ key second", [PLAIN_KEY, WHSEC_KEY], WHSEC_KEY],
  ];

  it.each(cases)("standardwebhooks: %s", (_, keys, receiverKey) => {
    const headers = signatureHeaders({ eventId: "evt_sw", timestamp: nowSeconds(), body, keys });
    expect(new StandardWebhook(receiverKey).verify(body, headers)).toStrictEqual(JSON.parse(body));
    // The prefix is optional for this library: the bare base64 secret works too.
    expect(new StandardWebhook(receiverKey.slice("whsec_".length)).verify(body, headers)).toStrictEqual(
      JSON.parse(body),
    );
  });

  it.each(cases)("svix (webhook-* header names): %s", (_, keys, receiverKey) => {
    const headers = signatureHeaders({ eventId: "evt_svix", timestamp: nowSeconds(), body, keys });
    expect(new SvixWebhook(receiverKey).verify(body, headers)).toStrictEqual(JSON.parse(body));
  });

  it("they accept a plain key only as raw bytes (format: raw), not as a whsec_ secret", () => {
    const headers = signatureHeaders({ eventId: "evt_raw", timestamp: nowSeconds(), body, keys: [PLAIN_KEY] });
    expect(new StandardWebhook(PLAIN_KEY, { format: "raw" }).verify(body, headers)).toStrictEqual(JSON.parse(body));
    expect(new SvixWebhook(PLAIN_KEY, { format: "raw" }).verify(body, headers)).toStrictEqual(JSON.parse(body));
    // Without format: raw they base64-decode the key; this one has a "-", which they refuse outright.
    expect(() => new StandardWebhook(PLAIN_KEY)).toThrow();
  });

  it("they still reject a tampered body, a wrong key and a stale timestamp (so the passes above mean something)", () => {
    const headers = signatureHeaders({ eventId: "evt_neg", timestamp: nowSeconds(), body, keys: [WHSEC_KEY] });
    expect(() => new StandardWebhook(WHSEC_KEY).verify(`${body} `, headers)).toThrow(/No matching signature/);
    expect(() => new SvixWebhook(OTHER_WHSEC_KEY).verify(body, headers)).toThrow(/No matching signature/);
    const stale = signatureHeaders({ eventId: "evt_neg", timestamp: nowSeconds() - 600, body, keys: [WHSEC_KEY] });
    expect(() => new StandardWebhook(WHSEC_KEY).verify(body, stale)).toThrow(/too old/);
    expect(() => new SvixWebhook(WHSEC_KEY).verify(body, stale)).toThrow(/too old/);
  });
});

describe("verifyEkaSignature", () => {
  const plain = vector("plain key");
  const rotation = vector("two keys during rotation (new whsec_ key first, previous plain key second)");
  const header = plain.headers["eka-webhook-signature"];
  const at = { now: plain.timestamp, toleranceSeconds: 300 };

  it("accepts a good signature and returns its timestamp", () => {
    expect(verifyEkaSignature(plain.body, header, PLAIN_KEY, at)).toStrictEqual({
      ok: true,
      timestamp: plain.timestamp,
    });
  });

  it.each(VECTORS.flatMap((v) => v.keys.map((key, i) => [v.name, i, key, v] as const)))(
    "%s: accepts the header with key #%i",
    (_, _i, key, v) => {
      const result = verifyEkaSignature(v.body, v.headers["eka-webhook-signature"], key, {
        now: v.timestamp,
        toleranceSeconds: 300,
      });
      expect(result).toStrictEqual({ ok: true, timestamp: v.timestamp });
    },
  );

  it("accepts when the matching key's entry is the second v1", () => {
    const signed = rotation.headers["eka-webhook-signature"];
    expect(signed?.split(",")).toHaveLength(3);
    expect(rotation.keys[1]).toBe(PLAIN_KEY);
    const result = verifyEkaSignature(rotation.body, signed, PLAIN_KEY, {
      now: rotation.timestamp,
      toleranceSeconds: 5,
    });
    expect(result).toStrictEqual({ ok: true, timestamp: rotation.timestamp });
  });

  it("rejects a tampered body and a wrong key", () => {
    expect(verifyEkaSignature(`${plain.body} `, header, PLAIN_KEY, at)).toStrictEqual({
      ok: false,
      reason: "no_matching_signature",
    });
    expect(verifyEkaSignature(plain.body, header, `${PLAIN_KEY}x`, at)).toStrictEqual({
      ok: false,
      reason: "no_matching_signature",
    });
    // A signature moved onto another timestamp no longer matches.
    const moved = header?.replace(`t=${plain.timestamp}`, `t=${plain.timestamp + 1}`);
    expect(verifyEkaSignature(plain.body, moved, PLAIN_KEY, at)).toStrictEqual({
      ok: false,
      reason: "no_matching_signature",
    });
  });

  it.each([
    ["at the far edge of the past", 300, true],
    ["one second too old", 301, false],
    ["at the far edge of the future", -300, true],
    ["one second too far in the future", -301, false],
  ] as const)("tolerance: a timestamp %s", (_, age, ok) => {
    const result = verifyEkaSignature(plain.body, header, PLAIN_KEY, {
      now: plain.timestamp + age,
      toleranceSeconds: 300,
    });
    expect(result).toStrictEqual(
      ok ? { ok: true, timestamp: plain.timestamp } : { ok: false, reason: "timestamp_out_of_tolerance" },
    );
  });

  it("reports a missing header", () => {
    expect(verifyEkaSignature(plain.body, undefined, PLAIN_KEY, at)).toStrictEqual({
      ok: false,
      reason: "missing_header",
    });
    expect(verifyEkaSignature(plain.body, " ", PLAIN_KEY, at)).toStrictEqual({ ok: false, reason: "missing_header" });
  });

  const mac = ekaSignature(PLAIN_KEY, plain.timestamp, plain.body);
  it.each([
    ["no t", `v1=${mac}`],
    ["no v1", `t=${plain.timestamp}`],
    ["a non-numeric t", `t=soon,v1=${mac}`],
    ["a fractional t", `t=${plain.timestamp}.5,v1=${mac}`],
    ["a negative t", `t=-${plain.timestamp},v1=${mac}`],
    ["two t entries", `t=${plain.timestamp},t=${plain.timestamp + 1},v1=${mac}`],
    ["no key=value pairs at all", mac],
  ])("reports a malformed header: %s", (_, malformed) => {
    expect(verifyEkaSignature(plain.body, malformed, PLAIN_KEY, at)).toStrictEqual({
      ok: false,
      reason: "malformed_header",
    });
  });

  it("skips entries of other schemes and tolerates spaces after commas", () => {
    const lenient = `t=${plain.timestamp}, v0=${"0".repeat(64)}, v1=${"f".repeat(64)}, v1=${mac}`;
    expect(verifyEkaSignature(plain.body, lenient, PLAIN_KEY, at)).toStrictEqual({
      ok: true,
      timestamp: plain.timestamp,
    });
  });

  it("does not mistake a truncated or empty entry for a match", () => {
    for (const entry of ["", mac.slice(0, 32), `${mac}00`]) {
      expect(verifyEkaSignature(plain.body, `t=${plain.timestamp},v1=${entry}`, PLAIN_KEY, at)).toStrictEqual({
        ok: false,
        reason: "no_matching_signature",
      });
    }
  });
});
