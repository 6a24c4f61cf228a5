/**
 * Ed25519 signing keys for webhooks that choose `signature_scheme: "ed25519"`
 * (docs/webhooks.md, "Ed25519 signatures"): Standard Webhooks' asymmetric
 * `v1a` signatures. The receiver verifies with the public key alone, so
 * whoever can read it (a gateway, a log) still cannot forge a request.
 *
 * The public key travels as Standard Webhooks spells it,
 * `whpk_<base64 of the 32 raw bytes>`. The private key is stored, sealed by
 * the KeyBox and never shown, as `ed25519 <base64 of the 32-byte seed>`: a
 * space no HMAC signing key has ever been allowed to hold, so a stored key's
 * text tells its kind without doubt (an older HMAC key that happens to start
 * `whsk_` stays an HMAC key), and a webhook's scheme is its key's kind.
 */
import { createPrivateKey, createPublicKey, type KeyObject, randomBytes, sign } from "node:crypto";
import { BoundedMap } from "./bounded-map.js";

/** The stored form's prefix; the space keeps it apart from every key signing_key accepts. */
export const PRIVATE_PREFIX = "ed25519 ";
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

/** A new private key, in its stored form. */
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

/** The public key of a private key, `whpk_…`. */
export function publicKeyOf(key: string): string {
  const spki = createPublicKey(privateKeyOf(key)).export({ format: "der", type: "spki" });
  return `${PUBLIC_PREFIX}${spki.subarray(SPKI_HEADER_BYTES).toString("base64")}`;
}

/** The Standard Webhooks `v1a` signature over `<webhook-id>.<t>.<body>`, standard base64. */
export function ed25519Signature(key: string, eventId: string, timestamp: number, body: string): string {
  return sign(null, Buffer.from(`${eventId}.${timestamp}.${body}`, "utf8"), privateKeyOf(key)).toString("base64");
}
