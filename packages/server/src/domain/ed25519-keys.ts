/**
 * Ed25519 signing keys for webhooks that choose `signature_scheme: "ed25519"`
 * (docs/webhooks.md, "Ed25519 signatures"): Standard Webhooks' asymmetric
 * `v1a` signatures. The receiver verifies with the public key alone, so
 * whoever can read it (a gateway, a log) still cannot forge a request.
 *
 * Keys travel as Standard Webhooks spells them: the private key
 * `whsk_<base64 of the 32-byte seed>` (stored sealed by the KeyBox, never
 * shown), the public key `whpk_<base64 of the 32 raw bytes>`. The prefix is
 * what tells an Ed25519 key from an HMAC one everywhere a key is used, so a
 * webhook's scheme is its key's kind and cannot disagree with it.
 */
import { createPrivateKey, createPublicKey, type KeyObject, randomBytes, sign } from "node:crypto";
import { BoundedMap } from "./bounded-map.js";

export const PRIVATE_PREFIX = "whsk_";
export const PUBLIC_PREFIX = "whpk_";
const SEED_BYTES = 32;
/** PKCS#8 DER of an Ed25519 private key is this fixed header and the 32-byte seed (RFC 8410). */
const PKCS8_HEADER = Buffer.from("302e020100300506032b657004220420", "hex");
/** SPKI DER of an Ed25519 public key is this fixed header and the 32 raw bytes. */
const SPKI_HEADER_BYTES = 12;

/** Opened key objects by key text: importing a key costs more than a signature. */
const KEYS = new BoundedMap<string, KeyObject>(10_000);

export function isEd25519Key(key: string): boolean {
  return key.startsWith(PRIVATE_PREFIX);
}

/** A new private key, `whsk_…`. */
export function generateEd25519Key(): string {
  return `${PRIVATE_PREFIX}${randomBytes(SEED_BYTES).toString("base64")}`;
}

function privateKeyOf(key: string): KeyObject {
  return KEYS.getOrSet(key, () => {
    const seed = Buffer.from(key.slice(PRIVATE_PREFIX.length), "base64");
    if (seed.length !== SEED_BYTES) throw new RangeError(`an Ed25519 key must hold ${SEED_BYTES} bytes`);
    return createPrivateKey({ key: Buffer.concat([PKCS8_HEADER, seed]), format: "der", type: "pkcs8" });
  });
}

/** The public key of a `whsk_` private key, `whpk_…`. */
export function publicKeyOf(key: string): string {
  const spki = createPublicKey(privateKeyOf(key)).export({ format: "der", type: "spki" });
  return `${PUBLIC_PREFIX}${spki.subarray(SPKI_HEADER_BYTES).toString("base64")}`;
}

/** The Standard Webhooks `v1a` signature over `<webhook-id>.<t>.<body>`, standard base64. */
export function ed25519Signature(key: string, eventId: string, timestamp: number, body: string): string {
  return sign(null, Buffer.from(`${eventId}.${timestamp}.${body}`, "utf8"), privateKeyOf(key)).toString("base64");
}
