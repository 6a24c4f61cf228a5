/**
 * Verifying a carehooks (or Eka Care) webhook request: the signature over the
 * raw body, then the timestamp. carehooks sends two signature headers over the
 * same timestamp (docs/webhooks.md, "The signatures"):
 *
 * - `eka-webhook-signature: t=<t>,v1=<hex>[,v1=<hex>]`, HMAC-SHA256 keyed by the
 *   whole key string's bytes over `<t>.<body>`;
 * - Standard Webhooks `webhook-signature: v1,<base64>[ v1,<base64>]` with
 *   `webhook-id` and `webhook-timestamp`, HMAC-SHA256 over `<id>.<t>.<body>`,
 *   keyed by the base64-decoded remainder of a `whsec_` key, else the key's bytes.
 *
 * Either header is enough. During a key rotation a header holds one `v1` entry
 * per valid key, so every entry is tried.
 *
 * A webhook with `signature_scheme: "ed25519"` is verified with its public
 * key (`whpk_…`): `webhook-signature` then holds `v1a,<base64>` entries,
 * Ed25519 signatures over the same `<id>.<t>.<body>`, and there is no Eka header.
 */
import { createHmac, createPublicKey, type KeyObject, timingSafeEqual, verify } from "node:crypto";
import type { CarehooksEvent } from "./events.js";
import {
  InvalidPayloadError,
  MalformedHeaderError,
  MissingHeaderError,
  NoMatchingSignatureError,
  TimestampOutOfToleranceError,
  type WebhookVerificationError,
} from "./verification-errors.js";
import { type HeadersInput, headerValues } from "./webhook-headers.js";

/** The raw request body exactly as received: the bytes that were signed. */
export type RawBody = string | Buffer | Uint8Array;

/** How a request was verified. */
export type SignatureScheme = "eka" | "standard";

export interface VerifyOptions {
  /** How far the signed timestamp may be from the receiver's clock, either way, in seconds. Default 300. */
  readonly toleranceSeconds?: number;
  /** The receiver's clock in milliseconds since the epoch, like `Date.now` (the default). */
  readonly now?: () => number;
}

/** A verified signature. */
export interface VerifiedSignature {
  readonly ok: true;
  /** The header that verified: `eka` (`eka-webhook-signature`) or `standard` (`webhook-signature`). */
  readonly scheme: SignatureScheme;
  /** The signed send time of this attempt, Unix seconds. */
  readonly timestamp: number;
  /** The `webhook-id` header (the event id), when present. */
  readonly webhookId: string | undefined;
}

/** The outcome of {@link verifySignature}: never thrown, always returned. */
export type SignatureVerification =
  | VerifiedSignature
  | { readonly ok: false; readonly error: WebhookVerificationError };

/**
 * One signing key, or several while the receiver itself rotates keys (any one may match).
 * Use the subscription's `signing_key` exactly as registered, `whsec_` prefix included;
 * for an ed25519 webhook, its `public_key` (`whpk_…`).
 */
export type SigningKeys = string | readonly string[];

export const DEFAULT_TOLERANCE_SECONDS = 300;

const EKA_HEADER = "eka-webhook-signature";
const STANDARD_HEADER = "webhook-signature";
const WHSEC_PREFIX = "whsec_";
const WHPK_PREFIX = "whpk_";
/** SPKI DER of an Ed25519 public key: this fixed header, then its 32 bytes (RFC 8410). */
const ED25519_SPKI_HEADER = Buffer.from("302a300506032b6570032100", "hex");
const ED25519_KEY_BYTES = 32;
/** A `whpk_` public key: exactly 32 bytes of padded base64. Anything else is taken as an HMAC key. */
const PUBLIC_KEY = /^whpk_[A-Za-z0-9+/]{43}=$/;
/** An HMAC-SHA256 MAC (32 bytes) and an Ed25519 signature (64 bytes), as padded standard base64. */
const MAC_BASE64 = /^[A-Za-z0-9+/]{43}=$/;
const SIGNATURE_BASE64 = /^[A-Za-z0-9+/]{86}==$/;

/** A `whpk_` public key; a key of another form (an older HMAC key that starts `whpk_`, say) is an HMAC key. */
const isPublicKey = (key: string): boolean => PUBLIC_KEY.test(key);
const TIMESTAMP = /^\d{1,15}$/;
const HEX_MAC = /^[0-9a-fA-F]{64}$/;

/**
 * Checks a request's signature and timestamp without parsing the body, and
 * returns the outcome instead of throwing it.
 *
 * @example
 * ```ts
 * const result = verifySignature(rawBody, req.headers, process.env.CAREHOOKS_SIGNING_KEY!);
 * if (!result.ok) console.warn("refused webhook:", result.error.code);
 * ```
 */
export function verifySignature(
  rawBody: RawBody,
  headers: HeadersInput,
  signingKey: SigningKeys,
  options: VerifyOptions = {},
): SignatureVerification {
  const keys = checkKeys(signingKey);
  const tolerance = options.toleranceSeconds ?? DEFAULT_TOLERANCE_SECONDS;
  if (!(tolerance >= 0)) throw new RangeError("toleranceSeconds must be a non-negative number");
  const now = Math.floor((options.now ?? Date.now)() / 1000);
  const body = toBytes(rawBody);

  const eka = headerValues(headers, EKA_HEADER);
  const standard = headerValues(headers, STANDARD_HEADER);
  if (eka.length === 0 && standard.length === 0) {
    return { ok: false, error: new MissingHeaderError([EKA_HEADER, STANDARD_HEADER]) };
  }
  const webhookId = single(headerValues(headers, "webhook-id"));

  // Either scheme is proof enough; when both fail, the first one's reason is the one reported.
  let failure: WebhookVerificationError | undefined;
  if (eka.length > 0) {
    const outcome = verifyEka(body, eka.join(","), keys);
    if (typeof outcome === "number") return checkTime("eka", outcome, now, tolerance, webhookId);
    failure = outcome;
  }
  if (standard.length > 0) {
    const outcome = verifyStandard(body, headers, standard.join(" "), keys);
    if (typeof outcome === "number") return checkTime("standard", outcome, now, tolerance, webhookId);
    failure ??= outcome;
  }
  return { ok: false, error: failure as WebhookVerificationError };
}

/**
 * Verifies a webhook request and returns its parsed, typed event. Pass the raw
 * body bytes exactly as received: re-serialised JSON does not match the signature.
 *
 * Throws a {@link WebhookVerificationError} subclass: `MissingHeaderError`,
 * `MalformedHeaderError`, `TimestampOutOfToleranceError`,
 * `NoMatchingSignatureError` or `InvalidPayloadError`.
 *
 * @example
 * ```ts
 * import { verifyWebhook, isAppointmentUpdated } from "@carehooks/sdk";
 *
 * const event = verifyWebhook(rawBody, request.headers, process.env.CAREHOOKS_SIGNING_KEY!);
 * if (isAppointmentUpdated(event) && event.data.action === "completed") {
 *   // fetch the appointment with CarehooksClient …
 * }
 * ```
 */
export function verifyWebhook(
  rawBody: RawBody,
  headers: HeadersInput,
  signingKey: SigningKeys,
  options: VerifyOptions = {},
): CarehooksEvent {
  return verifyAndParse(rawBody, headers, signingKey, options).event;
}

/** {@link verifyWebhook} that also returns how the signature verified (for the adapters). */
export function verifyAndParse(
  rawBody: RawBody,
  headers: HeadersInput,
  signingKey: SigningKeys,
  options: VerifyOptions = {},
): { readonly event: CarehooksEvent; readonly signature: VerifiedSignature } {
  const signature = verifySignature(rawBody, headers, signingKey, options);
  if (!signature.ok) throw signature.error;
  return { event: parseEvent(toBytes(rawBody)), signature };
}

/** Input of {@link signatureHeaders}. */
export interface SignInput {
  /** The exact body that will be sent. */
  readonly body: RawBody;
  /** The event id, sent as `webhook-id`. */
  readonly webhookId: string;
  /** Unix seconds; default now. */
  readonly timestamp?: number;
  /** One key, or several (new first) to sign as during a rotation. */
  readonly signingKey: SigningKeys;
}

/**
 * The headers carehooks would send for `body`: `webhook-id`,
 * `webhook-timestamp`, `eka-webhook-signature` and `webhook-signature`. Handy
 * for testing a receiver, or for forwarding a webhook to one.
 *
 * @example
 * ```ts
 * const body = JSON.stringify(event);
 * await fetch("http://localhost:3000/webhooks", {
 *   method: "POST",
 *   headers: { "content-type": "application/json", ...signatureHeaders({ body, webhookId: event.event_id, signingKey }) },
 *   body,
 * });
 * ```
 */
export function signatureHeaders(input: SignInput): Record<string, string> {
  const keys = checkKeys(input.signingKey);
  const timestamp = input.timestamp ?? Math.floor(Date.now() / 1000);
  if (!Number.isSafeInteger(timestamp) || timestamp < 0) throw new RangeError("timestamp must be whole Unix seconds");
  const body = toBytes(input.body);
  return {
    "webhook-id": input.webhookId,
    "webhook-timestamp": String(timestamp),
    [EKA_HEADER]: [`t=${timestamp}`, ...keys.map((key) => `v1=${ekaMac(key, timestamp, body).toString("hex")}`)].join(
      ",",
    ),
    [STANDARD_HEADER]: keys
      .map((key) => `v1,${standardMac(key, input.webhookId, timestamp, body).toString("base64")}`)
      .join(" "),
  };
}

/** The JSON event in a verified body. */
export function parseEvent(body: Buffer): CarehooksEvent {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString("utf8"));
  } catch (error) {
    throw new InvalidPayloadError((error as Error).message);
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new InvalidPayloadError("expected a JSON object");
  }
  return parsed as CarehooksEvent;
}

/** The body as bytes; a string is taken as UTF-8, as carehooks sends it. */
export function toBytes(body: RawBody): Buffer {
  if (typeof body === "string") return Buffer.from(body, "utf8");
  if (Buffer.isBuffer(body)) return body;
  if (body instanceof Uint8Array) return Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  throw new TypeError(
    "the raw body must be a string, a Buffer or a Uint8Array (the bytes as received, not parsed JSON)",
  );
}

/**
 * The keys to verify with, or a TypeError: an adapter calls this when it is
 * made, so a key missing from the environment fails at start-up, not on the
 * first webhook. `where` names the caller in the message.
 */
export function checkKeys(signingKey: SigningKeys, where = "signingKey"): readonly string[] {
  const keys = typeof signingKey === "string" ? [signingKey] : Array.isArray(signingKey) ? signingKey : [];
  if (keys.length === 0 || keys.some((key) => typeof key !== "string" || key.length === 0)) {
    // A lost key must not turn into an empty HMAC key that anyone can sign with.
    throw new TypeError(
      `${where}: the signing key must be a non-empty string (or a non-empty list of them), got ${describe(signingKey)}; is the environment variable that holds it set?`,
    );
  }
  for (const key of keys) {
    if (key.startsWith(WHSEC_PREFIX) && Buffer.from(key.slice(WHSEC_PREFIX.length), "base64").length === 0) {
      throw new TypeError("a whsec_ signing key must carry base64 key bytes after the prefix");
    }
    if (isPublicKey(key)) publicKeyOf(key);
  }
  return keys;
}

function checkTime(
  scheme: SignatureScheme,
  timestamp: number,
  now: number,
  tolerance: number,
  webhookId: string | undefined,
): SignatureVerification {
  // Checked after the MAC, so "too old" is only ever said of an authentic request.
  if (Math.abs(now - timestamp) > tolerance) {
    return { ok: false, error: new TimestampOutOfToleranceError(timestamp, now, tolerance) };
  }
  return { ok: true, scheme, timestamp, webhookId };
}

/** The signed timestamp when an entry matches, else why not. */
function verifyEka(body: Buffer, header: string, keys: readonly string[]): number | WebhookVerificationError {
  let timestamp: number | undefined;
  const given: Buffer[] = [];
  let entries = 0;
  for (const part of header.split(",")) {
    const eq = part.indexOf("=");
    if (eq < 0) continue;
    const name = part.slice(0, eq).trim();
    const value = part.slice(eq + 1).trim();
    if (name === "t") {
      if (timestamp !== undefined) return new MalformedHeaderError(EKA_HEADER, "more than one t= entry");
      if (!TIMESTAMP.test(value)) return new MalformedHeaderError(EKA_HEADER, "t= is not whole Unix seconds");
      timestamp = Number(value);
    } else if (name === "v1") {
      entries++;
      // A v1 entry that is not 64 hex digits cannot match; other entries still may.
      if (HEX_MAC.test(value)) given.push(Buffer.from(value, "hex"));
    }
  }
  if (timestamp === undefined) return new MalformedHeaderError(EKA_HEADER, "no t= entry");
  if (entries === 0) return new MalformedHeaderError(EKA_HEADER, "no v1= entry");
  const signed = timestamp;
  return anyMatches(
    keys.filter((key) => !isPublicKey(key)).map((key) => ekaMac(key, signed, body)),
    given,
  )
    ? timestamp
    : new NoMatchingSignatureError();
}

function verifyStandard(
  body: Buffer,
  headers: HeadersInput,
  header: string,
  keys: readonly string[],
): number | WebhookVerificationError {
  const ids = headerValues(headers, "webhook-id");
  const times = headerValues(headers, "webhook-timestamp");
  const missing = [...(ids.length === 0 ? ["webhook-id"] : []), ...(times.length === 0 ? ["webhook-timestamp"] : [])];
  if (missing.length > 0) return new MissingHeaderError(missing);
  const id = single(ids);
  if (id === undefined) return new MalformedHeaderError("webhook-id", "more than one value");
  const time = single(times)?.trim();
  if (time === undefined || !TIMESTAMP.test(time)) {
    return new MalformedHeaderError("webhook-timestamp", "not whole Unix seconds");
  }
  const timestamp = Number(time);

  const given: Buffer[] = [];
  const asymmetric: Buffer[] = [];
  let entries = 0;
  for (const entry of header.trim().split(/\s+/)) {
    const comma = entry.indexOf(",");
    const version = comma < 0 ? "" : entry.slice(0, comma);
    const value = entry.slice(comma + 1);
    // Strict base64 of the exact length: Buffer.from would skip stray characters and still decode.
    if (version === "v1" && MAC_BASE64.test(value)) given.push(Buffer.from(value, "base64"));
    else if (version === "v1a" && SIGNATURE_BASE64.test(value)) asymmetric.push(Buffer.from(value, "base64"));
    if (version === "v1" || version === "v1a") entries++;
  }
  if (entries === 0) {
    return new MalformedHeaderError(STANDARD_HEADER, "no v1,<base64> or v1a,<base64> entry");
  }
  const macKeys = keys.filter((key) => !isPublicKey(key));
  const publicKeys = keys.filter(isPublicKey);
  const macMatched = anyMatches(
    macKeys.map((key) => standardMac(key, id, timestamp, body)),
    given,
  );
  const signedContent = Buffer.concat([Buffer.from(`${id}.${timestamp}.`, "utf8"), body]);
  // Every pair is checked, as for the MACs: which entry matched is not told by the time taken.
  let signatureMatched = false;
  for (const key of publicKeys) {
    for (const signature of asymmetric) {
      if (verify(null, signedContent, publicKeyOf(key), signature)) signatureMatched = true;
    }
  }
  return macMatched || signatureMatched ? timestamp : new NoMatchingSignatureError();
}

const publicKeys = new Map<string, KeyObject>();

/** The key object of a `whpk_` public key; a TypeError when it is not one. */
function publicKeyOf(key: string): KeyObject {
  const known = publicKeys.get(key);
  if (known) return known;
  const raw = Buffer.from(key.slice(WHPK_PREFIX.length), "base64");
  if (raw.length !== ED25519_KEY_BYTES) {
    throw new TypeError(`a whpk_ public key must carry the base64 of ${ED25519_KEY_BYTES} bytes after the prefix`);
  }
  const object = createPublicKey({ key: Buffer.concat([ED25519_SPKI_HEADER, raw]), format: "der", type: "spki" });
  // A receiver verifies with one or two keys: a small map suffices, bounded anyway.
  if (publicKeys.size >= 100) publicKeys.clear();
  publicKeys.set(key, object);
  return object;
}

/** Constant-time comparison of every pair, without stopping early, so timing does not say which entry matched. */
function anyMatches(expected: readonly Buffer[], given: readonly Buffer[]): boolean {
  let matched = false;
  for (const mac of expected) {
    for (const candidate of given) {
      if (candidate.length === mac.length && timingSafeEqual(candidate, mac)) matched = true;
    }
  }
  return matched;
}

function ekaMac(key: string, timestamp: number, body: Buffer): Buffer {
  return createHmac("sha256", Buffer.from(key, "utf8")).update(`${timestamp}.`, "utf8").update(body).digest();
}

function standardMac(key: string, id: string, timestamp: number, body: Buffer): Buffer {
  const secret = key.startsWith(WHSEC_PREFIX)
    ? Buffer.from(key.slice(WHSEC_PREFIX.length), "base64")
    : Buffer.from(key, "utf8");
  return createHmac("sha256", secret).update(`${id}.${timestamp}.`, "utf8").update(body).digest();
}

/** The one value of a header, or undefined when it is absent or repeated with different values. */
function single(values: readonly string[]): string | undefined {
  const distinct = new Set(values.map((value) => value.trim()));
  return distinct.size === 1 ? [...distinct][0] : undefined;
}

function describe(value: unknown): string {
  if (value === undefined || value === null) return String(value);
  if (typeof value === "string") return value === "" ? "an empty string" : "a string";
  return Array.isArray(value) ? `a list of ${value.length}` : typeof value;
}
