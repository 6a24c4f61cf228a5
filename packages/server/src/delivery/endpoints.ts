/**
 * What an attempt needs to know about its endpoint URL, worked out once per
 * URL and remembered: a webhook is sent to over and over, and parsing and
 * checking its URL each time was a fixed cost of every attempt.
 */
import { BoundedMap } from "../domain/bounded-map.js";
import { checkEndpoint, type UrlPolicy } from "../domain/url-policy.js";

/** Where to send: undici's `origin` and `path` request options, and the Host header the URL implies. */
export interface Target {
  readonly ok: true;
  readonly origin: string;
  /** Path and query; the fragment is never sent. */
  readonly path: string;
  readonly host: string;
}

/** An endpoint no attempt may be sent to, and what to report instead. */
export interface Refused {
  readonly ok: false;
  readonly error: "invalid_url" | "blocked";
  readonly message: string;
}

export type Endpoint = Target | Refused;

/** Endpoints remembered by default; the oldest is forgotten first. */
const DEFAULT_CAPACITY = 10_000;

/**
 * The answer is a pure function of the URL and the policy, and a sender's policy is fixed,
 * so a remembered answer never goes stale. The policy is checked here, not only at
 * registration: it may have changed since a webhook was registered.
 */
export function endpointOf(url: string, policy: UrlPolicy): Endpoint {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return { ok: false, error: "invalid_url", message: "endpoint is not a valid URL" };
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") {
    return { ok: false, error: "invalid_url", message: `endpoint must be an http(s) URL, not ${parsed.protocol}` };
  }
  const check = checkEndpoint(url, policy);
  if (!check.ok) return { ok: false, error: "blocked", message: check.reason };
  const { origin, pathname, search, host } = check.url;
  return { ok: true, origin, path: `${pathname}${search}`, host };
}

export class EndpointCache {
  readonly #policy: UrlPolicy;
  readonly #known: BoundedMap<string, Endpoint>;

  constructor(policy: UrlPolicy, capacity = DEFAULT_CAPACITY) {
    this.#policy = policy;
    this.#known = new BoundedMap(capacity);
  }

  get size(): number {
    return this.#known.size;
  }

  get(url: string): Endpoint {
    return this.#known.getOrSet(url, () => endpointOf(url, this.#policy));
  }
}
