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
import { MASK } from "./custom-headers.js";
import { isEd25519Key } from "./ed25519-keys.js";
import { type SignatureEntry, signatureEntry, signatureHeaders, signatureHeadersOf } from "./signing.js";

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

/** What names a signing key in the delivery log: KeyBox.fingerprint. */
export interface KeyNamer {
  fingerprint(secret: string): string;
}

/** How an Ed25519 key's name starts: its signature is in `webhook-signature` only. */
const ED25519_ID = "ed25519_";

/**
 * A key's name in the delivery log: its kind and its fingerprint in this
 * installation.
 */
export function keyIdOf(key: string, namer: KeyNamer): string {
  return `${isEd25519Key(key) ? ED25519_ID : "hmac_"}${namer.fingerprint(key)}`;
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
  /** The event's stored text; undefined when the event is gone. */
  readonly body: string | undefined;
}

/**
 * The headers an attempt was sent with, rebuilt. `heldKeys`: the keys the
 * webhook holds now, by their `keyIdOf`, opened; a key the attempt was signed
 * with and no longer held is named in place of its signature, in the order
 * the keys signed.
 */
export function rebuiltHeaders(
  meta: RequestMeta,
  attempt: SentAttempt,
  heldKeys: ReadonlyMap<string, string>,
): Record<string, string> {
  const timestamp = Math.floor(attempt.startedAt / 1000);
  const entries = meta.keyIds.map((id): SignatureEntry => {
    const key = heldKeys.get(id);
    if (key !== undefined && attempt.body !== undefined) {
      return signatureEntry(key, attempt.eventId, timestamp, attempt.body);
    }
    const why = `(key ${id} ${key === undefined ? "no longer held" : "signed an event no longer stored"})`;
    // As signatureEntry's: Eka's header carries the MAC keys only.
    return id.startsWith(ED25519_ID) ? { standard: `v1a,${why}` } : { eka: `v1=${why}`, standard: `v1,${why}` };
  });
  return {
    ...requestHeaders({
      eventId: attempt.eventId,
      timestamp,
      body: "",
      keys: [],
      custom: Object.fromEntries(meta.headerNames.map((name) => [name, MASK])),
      version: meta.version,
    }),
    ...signatureHeadersOf(timestamp, entries),
  };
}
