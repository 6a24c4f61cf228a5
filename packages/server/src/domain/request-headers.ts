/**
 * The headers of a webhook request: built to send an attempt, and built
 * again, from what the attempt stored, to show it in the delivery log.
 *
 * An attempt stores what its headers derive from (`RequestMeta`, about 60
 * bytes: carehooks' version, the ids of the keys that signed it, the names of
 * the webhook's own headers), not the headers (about 400 bytes). With the
 * delivery's event id and payload and the attempt's start, that rebuilds every
 * header the receiver got, each signature included while the webhook still
 * holds its key; a key rotated out since is named where its signature was.
 * The webhook's own header values are masked in the log, as they always were:
 * they often carry credentials.
 */
import { createHash } from "node:crypto";
import { MASK } from "./custom-headers.js";
import { isEd25519Key } from "./ed25519-keys.js";
import { signatureHeaders } from "./signing.js";

/** What an attempt's headers derive from, besides its delivery and its start. */
export interface RequestMeta {
  /** carehooks' version, in `user-agent`. */
  readonly version: string;
  /** The keys that signed it (`keyIdOf`), new key first. */
  readonly keyIds: readonly string[];
  /** The webhook's own headers, in the order sent. */
  readonly headerNames: readonly string[];
}

export interface RequestInput {
  /** The event id: `webhook-id`. */
  readonly eventId: string;
  /** Unix seconds: `webhook-timestamp`, and signed. */
  readonly timestamp: number;
  /** The event's stored text, as sent. */
  readonly body: string;
  /** Signing keys, opened, new key first. */
  readonly keys: readonly string[];
  /** The webhook's own headers. */
  readonly custom: Readonly<Record<string, string>>;
  readonly version: string;
}

/** Every header of a webhook request, lower-case. */
export function requestHeaders(input: RequestInput): Record<string, string> {
  return {
    // A webhook's own headers first: they can never replace carehooks' (domain/custom-headers.ts).
    ...input.custom,
    "content-type": "application/json",
    "user-agent": `carehooks/${input.version}`,
    ...signatureHeaders({ eventId: input.eventId, timestamp: input.timestamp, body: input.body, keys: input.keys }),
  };
}

/**
 * A key's name in the delivery log: its kind and 16 hex digits of its
 * SHA-256. It tells keys apart and gives away nothing a signature made with
 * the key does not.
 */
export function keyIdOf(key: string): string {
  const digest = createHash("sha256").update(key, "utf8").digest("hex").slice(0, 16);
  return `${isEd25519Key(key) ? "ed25519" : "hmac"}_${digest}`;
}

export function encodeRequestMeta(meta: RequestMeta): string {
  return JSON.stringify({ v: meta.version, k: meta.keyIds, h: meta.headerNames });
}

export function decodeRequestMeta(text: string): RequestMeta {
  const raw = JSON.parse(text) as { v?: unknown; k?: unknown; h?: unknown };
  return { version: String(raw.v ?? ""), keyIds: strings(raw.k), headerNames: strings(raw.h) };
}

function strings(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((item): item is string => typeof item === "string") : [];
}

/** An attempt as stored: what its headers are rebuilt from. */
export interface SentAttempt {
  readonly eventId: string;
  /** Epoch ms: its `webhook-timestamp` is the whole seconds of it. */
  readonly startedAt: number;
  readonly body: string;
}

/**
 * The headers an attempt was sent with, rebuilt. `heldKeys`: the keys the
 * webhook holds now, opened; one the attempt was signed with and that is no
 * longer among them is named in place of its signature.
 */
export function rebuiltHeaders(
  meta: RequestMeta,
  attempt: SentAttempt,
  heldKeys: readonly string[],
): Record<string, string> {
  const byId = new Map(heldKeys.map((key) => [keyIdOf(key), key]));
  const timestamp = Math.floor(attempt.startedAt / 1000);
  const headers = requestHeaders({
    eventId: attempt.eventId,
    timestamp,
    body: attempt.body,
    keys: meta.keyIds.flatMap((id) => byId.get(id) ?? []),
    custom: Object.fromEntries(meta.headerNames.map((name) => [name, MASK])),
    version: meta.version,
  });
  for (const id of meta.keyIds.filter((keyId) => !byId.has(keyId))) {
    const gone = `(key ${id} no longer held)`;
    const ed25519 = id.startsWith("ed25519_");
    headers["webhook-signature"] = [headers["webhook-signature"], `${ed25519 ? "v1a" : "v1"},${gone}`]
      .filter(Boolean)
      .join(" ");
    // Eka's header carries the MAC keys only.
    if (!ed25519)
      headers["eka-webhook-signature"] = `${headers["eka-webhook-signature"] ?? `t=${timestamp}`},v1=${gone}`;
  }
  return headers;
}
