/**
 * A webhook's static request headers (docs/webhooks.md, "Custom headers"):
 * sent with every attempt, for receivers behind a gateway that wants its own
 * token or a routing header. They may not replace what identifies and signs
 * the request, nor the headers that belong to the connection. Pure.
 */
import { invalidRequest } from "./errors.js";

export const HEADER_LIMITS = {
  /** Headers per webhook. */
  count: 20,
  /** Characters of one value. */
  valueChars: 1024,
  /** Characters of names and values together. */
  totalChars: 8192,
} as const;

/** What carehooks sets on every attempt: identity, signatures, the body's type. */
const RESERVED = new Set(["content-type", "user-agent", "webhook-id", "webhook-timestamp", "webhook-signature"]);
/** Prefixes of carehooks' own headers, present and future. */
const RESERVED_PREFIXES = ["eka-", "webhook-", "carehooks-"];
/** Hop-by-hop and framing headers (RFC 9110 §7.6.1), which belong to the connection, not the request. */
const HOP_BY_HOP = new Set([
  "connection",
  "content-length",
  "expect",
  "host",
  "keep-alive",
  "proxy-authenticate",
  "proxy-authorization",
  "proxy-connection",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
]);

/**
 * What a read shows instead of every value: which header holds a credential
 * cannot be told from its name (`x-functions-key`, `ocp-apim-subscription-key`,
 * `x-auth`, …), so none is shown. Sending it back is refused, not stored.
 */
export const MASK = "********";

/** An RFC 9110 token: what a header name may be made of. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** Visible ASCII and spaces inside; no control characters, so no header injection. */
const VALUE = /^[\x21-\x7e]([\x20-\x7e]*[\x21-\x7e])?$/;

/**
 * The headers given, checked, with lower-case names; null clears them.
 * Throws INVALID_REQUEST naming the header and what is wrong with it.
 */
export function checkCustomHeaders(input: unknown): Record<string, string> | null {
  if (input === null) return null;
  if (typeof input !== "object" || Array.isArray(input)) {
    throw invalidRequest('headers must be an object of names and values, like {"x-gateway-token": "…"}');
  }
  const entries = Object.entries(input as Record<string, unknown>);
  if (entries.length > HEADER_LIMITS.count) throw invalidRequest(`headers may hold at most ${HEADER_LIMITS.count}`);
  const headers: Record<string, string> = {};
  let total = 0;
  for (const [given, value] of entries) {
    const name = given.toLowerCase();
    if (!TOKEN.test(name)) throw invalidRequest(`header name "${given}" is not a valid HTTP header name`);
    if (RESERVED.has(name) || RESERVED_PREFIXES.some((prefix) => name.startsWith(prefix))) {
      throw invalidRequest(`header "${given}" is set by carehooks (identity and signatures) and cannot be replaced`);
    }
    if (HOP_BY_HOP.has(name)) throw invalidRequest(`header "${given}" belongs to the connection and cannot be set`);
    if (name === "__proto__") throw invalidRequest(`header name "${given}" cannot be stored`);
    if (Object.hasOwn(headers, name)) throw invalidRequest(`header "${given}" is given twice`);
    if (typeof value !== "string" || !VALUE.test(value) || value.length > HEADER_LIMITS.valueChars) {
      throw invalidRequest(
        `header "${given}" must be 1 to ${HEADER_LIMITS.valueChars} printable ASCII characters, without leading or trailing spaces`,
      );
    }
    if (value === MASK) {
      throw invalidRequest(`header "${given}" holds the mask a read shows; send its real value`);
    }
    total += name.length + value.length;
    headers[name] = value;
  }
  if (total > HEADER_LIMITS.totalChars) {
    throw invalidRequest(`headers must hold at most ${HEADER_LIMITS.totalChars} characters of names and values`);
  }
  return headers;
}

/** The headers as a read and the attempt log show them: names only, every value masked. */
export function maskedHeaders(headers: Readonly<Record<string, string>>): Record<string, string> {
  return Object.fromEntries(Object.keys(headers).map((name) => [name, MASK]));
}
