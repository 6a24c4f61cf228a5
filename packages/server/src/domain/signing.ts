/**
 * The webhook request signature (docs/webhooks.md, "The signatures").
 *
 * Every attempt carries two signatures over the same timestamp: Eka's
 * `eka-webhook-signature` (so Eka receivers keep working) and Standard
 * Webhooks' `webhook-signature` (so the `standardwebhooks` and `svix`
 * verifiers accept us). During a key rotation each header holds one entry per
 * valid key, new key first. The body is signed exactly as stored: a
 * re-serialised body would not match what the receiver gets.
 *
 * An Ed25519 key (domain/ed25519-keys.ts) signs only in
 * `webhook-signature`, as a `v1a` entry; Eka's header has no asymmetric
 * form, so a webhook signed only with Ed25519 gets no `eka-webhook-signature`.
 */
import { createHmac, timingSafeEqual } from "node:crypto";
import { ed25519Signature, isEd25519Key } from "./ed25519-keys.js";

export interface SignInput {
  /** The event id; also the `webhook-id` header. */
  readonly eventId: string;
  /** This attempt's send time in Unix seconds. */
  readonly timestamp: number;
  /** The event's stored text, byte for byte. */
  readonly body: string;
  /** Valid signing keys, new key first; empty for an unsigned subscription. */
  readonly keys: readonly string[];
}

const WHSEC_PREFIX = "whsec_";

/** The request headers that identify and sign one delivery attempt, with lower-case names. */
export function signatureHeaders(input: SignInput): Record<string, string> {
  const { eventId, timestamp, body, keys } = input;
  assertTimestamp(timestamp);
  return {
    "webhook-id": eventId,
    "webhook-timestamp": String(timestamp),
    ...signatureHeadersOf(
      timestamp,
      keys.map((key) => signatureEntry(key, eventId, timestamp, body)),
    ),
  };
}

/**
 * One key's entries in the two signature headers: Eka's `v1=<hex>` (MAC keys
 * only) and Standard Webhooks' `v1,<base64>` (MAC) or `v1a,<base64>` (Ed25519).
 */
export interface SignatureEntry {
  readonly eka?: string;
  readonly standard: string;
}

export function signatureEntry(key: string, eventId: string, timestamp: number, body: string): SignatureEntry {
  return isEd25519Key(key)
    ? { standard: `v1a,${ed25519Signature(key, eventId, timestamp, body)}` }
    : {
        eka: `v1=${ekaSignature(key, timestamp, body)}`,
        standard: `v1,${standardSignature(key, eventId, timestamp, body)}`,
      };
}

/** The signature headers of `entries`, one per key, new key first; none for an unsigned request. */
export function signatureHeadersOf(timestamp: number, entries: readonly SignatureEntry[]): Record<string, string> {
  const headers: Record<string, string> = {};
  const eka = entries.flatMap((entry) => (entry.eka === undefined ? [] : [entry.eka]));
  if (eka.length > 0) headers["eka-webhook-signature"] = [`t=${timestamp}`, ...eka].join(",");
  if (entries.length > 0) headers["webhook-signature"] = entries.map((entry) => entry.standard).join(" ");
  return headers;
}

/** Eka's MAC: the whole key string (a `whsec_` prefix included) over `<t>.<body>`, lowercase hex. */
export function ekaSignature(key: string, timestamp: number, body: string): string {
  assertKey(key);
  assertTimestamp(timestamp);
  return createHmac("sha256", Buffer.from(key, "utf8")).update(`${timestamp}.${body}`, "utf8").digest("hex");
}

/** The Standard Webhooks MAC over `<webhook-id>.<t>.<body>`, padded standard base64. */
export function standardSignature(key: string, eventId: string, timestamp: number, body: string): string {
  assertKey(key);
  assertTimestamp(timestamp);
  return createHmac("sha256", standardKeyBytes(key)).update(`${eventId}.${timestamp}.${body}`, "utf8").digest("base64");
}

/** Standard Webhooks secrets are `whsec_<base64>`; any other key is used as its own bytes. */
function standardKeyBytes(key: string): Buffer {
  return key.startsWith(WHSEC_PREFIX)
    ? Buffer.from(key.slice(WHSEC_PREFIX.length), "base64")
    : Buffer.from(key, "utf8");
}

// An empty key would still produce a "signature"; refuse it so a lost key cannot pass for a signed request.
function assertKey(key: string): void {
  if (key.length === 0) throw new RangeError("a signing key cannot be empty");
}

// Both headers must carry the same integer seconds the receivers parse back.
function assertTimestamp(timestamp: number): void {
  if (!Number.isSafeInteger(timestamp) || timestamp < 0) {
    throw new RangeError(`the signature timestamp must be whole Unix seconds, not ${timestamp}`);
  }
}

export type VerifyFailure =
  | "missing_header"
  | "malformed_header"
  | "timestamp_out_of_tolerance"
  | "no_matching_signature";

export interface VerifyOptions {
  /** The receiver's clock, Unix seconds. */
  readonly now: number;
  /** How far `t` may be from `now`, either way. */
  readonly toleranceSeconds: number;
}

export type VerifyResult =
  | { readonly ok: true; readonly timestamp: number }
  | { readonly ok: false; readonly reason: VerifyFailure };

/**
 * Checks an `eka-webhook-signature` header the way a receiver should: split on
 * `,` then the first `=`, try every `v1` entry (one per key during a
 * rotation), compare in constant time, then bound the timestamp. Entries of
 * other schemes are ignored so a future `v2` does not break old receivers.
 */
export function verifyEkaSignature(
  body: string,
  header: string | undefined,
  key: string,
  opts: VerifyOptions,
): VerifyResult {
  if (header === undefined || header.trim() === "") return { ok: false, reason: "missing_header" };
  const parsed = parseEkaHeader(header);
  if (parsed === undefined) return { ok: false, reason: "malformed_header" };

  const expected = Buffer.from(ekaSignature(key, parsed.timestamp, body), "utf8");
  // Check every entry without stopping early, so the time taken does not say which entry matched.
  let matched = false;
  for (const candidate of parsed.signatures) {
    const given = Buffer.from(candidate, "utf8");
    if (given.length === expected.length && timingSafeEqual(given, expected)) matched = true;
  }
  if (!matched) return { ok: false, reason: "no_matching_signature" };
  // Checked after the MAC so this reason is only given for authentic requests (a replay, or a skewed clock).
  if (Math.abs(opts.now - parsed.timestamp) > opts.toleranceSeconds) {
    return { ok: false, reason: "timestamp_out_of_tolerance" };
  }
  return { ok: true, timestamp: parsed.timestamp };
}

function parseEkaHeader(header: string): { timestamp: number; signatures: string[] } | undefined {
  let timestamp: number | undefined;
  const signatures: string[] = [];
  for (const part of header.split(",")) {
    const eq = part.indexOf("=");
    if (eq < 0) continue;
    const name = part.slice(0, eq).trim();
    const value = part.slice(eq + 1).trim();
    if (name === "t") {
      // Two different timestamps would make it ambiguous which one was signed.
      if (timestamp !== undefined || !/^\d{1,15}$/.test(value)) return undefined;
      timestamp = Number(value);
    } else if (name === "v1") {
      signatures.push(value);
    }
  }
  if (timestamp === undefined || signatures.length === 0) return undefined;
  return { timestamp, signatures };
}
