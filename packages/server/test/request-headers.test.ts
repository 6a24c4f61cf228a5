/**
 * The delivery log's headers, rebuilt from what an attempt stored
 * (domain/request-headers.ts): equal to what was sent while the keys are
 * held, each signature in its place when some are not.
 */
import { describe, expect, it } from "vitest";
import { generateEd25519Key } from "../src/domain/ed25519-keys.js";
import { generateMasterKey, KeyBox } from "../src/domain/key-box.js";
import { keyIdOf, type RequestInput, rebuiltHeaders, requestHeaders } from "../src/domain/request-headers.js";

const box = new KeyBox(generateMasterKey());
const sent: Omit<RequestInput, "keys"> = {
  eventId: "evt_01JXAMPLE",
  timestamp: 1_764_800_000,
  body: '{"event":"appointment.created"}',
  custom: { "x-gateway-token": "secret-value", "x-region": "south" },
  version: "9.9.9",
};
const attempt = { eventId: sent.eventId, startedAt: sent.timestamp * 1000 + 999, body: sent.body };
const metaOf = (keys: readonly string[]) => ({
  version: sent.version,
  keyIds: keys.map((key) => keyIdOf(key, box)),
  headerNames: Object.keys(sent.custom),
});
const held = (keys: readonly string[]) => new Map(keys.map((key) => [keyIdOf(key, box), key]));
const masked = { "x-gateway-token": "********", "x-region": "********" };

describe("request headers rebuilt for the delivery log", () => {
  const [newer, older, ed] = ["whsec_bmV3ZXIta2V5LWJ5dGVz", "an-older-plain-key", generateEd25519Key()];

  it("equal the headers sent, custom values masked, with every key held", () => {
    const keys = [newer, older, ed];
    expect(rebuiltHeaders(metaOf(keys), attempt, held(keys))).toEqual({
      ...requestHeaders({ ...sent, keys }),
      ...masked,
    });
  });

  it("keep each signature in its place when an earlier key is no longer held", () => {
    const keys = [newer, older];
    const full = requestHeaders({ ...sent, keys });
    const rebuilt = rebuiltHeaders(metaOf(keys), attempt, held([older]));
    const gone = `(key ${keyIdOf(newer, box)} no longer held)`;
    const [, olderStandard] = (full["webhook-signature"] as string).split(" ");
    const [t, , olderEka] = (full["eka-webhook-signature"] as string).split(",");
    expect(rebuilt["webhook-signature"]).toBe(`v1,${gone} ${olderStandard}`);
    expect(rebuilt["eka-webhook-signature"]).toBe(`${t},v1=${gone},${olderEka}`);
  });

  it("name an Ed25519 key only in webhook-signature, and sign nothing over an event no longer stored", () => {
    const rebuilt = rebuiltHeaders(metaOf([ed]), { ...attempt, body: undefined }, held([ed]));
    expect(rebuilt["webhook-signature"]).toBe(`v1a,(key ${keyIdOf(ed, box)} signed an event no longer stored)`);
    expect(rebuilt["eka-webhook-signature"]).toBeUndefined();
  });

  it("send no signature headers for an unsigned webhook", () => {
    const rebuilt = rebuiltHeaders(metaOf([]), attempt, held([]));
    expect(rebuilt).toEqual({ ...requestHeaders({ ...sent, keys: [] }), ...masked });
    expect(rebuilt["webhook-signature"]).toBeUndefined();
  });

  it("name keys by installation: another master key names the same key differently", () => {
    const other = new KeyBox(generateMasterKey());
    expect(keyIdOf(newer, box)).toMatch(/^hmac_[0-9a-f]{16}$/);
    expect(keyIdOf(ed, box)).toMatch(/^ed25519_[0-9a-f]{16}$/);
    expect(keyIdOf(newer, box)).toBe(keyIdOf(newer, box));
    expect(keyIdOf(newer, other)).not.toBe(keyIdOf(newer, box));
  });
});
