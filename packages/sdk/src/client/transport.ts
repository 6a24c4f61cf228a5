/**
 * One HTTP call to the API, with the SDK's rules: JSON in and out, the access
 * token attached (and renewed once on a 401), retries with backoff on 429, 5xx
 * and network errors for requests that are safe to repeat, and API errors
 * turned into `CarehooksApiError`.
 *
 * Safe to repeat: GET, DELETE and PATCH of a subscription are idempotent by
 * nature; every POST and PATCH is sent with an `Idempotency-Key` (one per
 * logical call, the same on each retry), so the server replays its first answer
 * instead of acting twice.
 */
import { SDK_VERSION } from "../version.js";
import { CarehooksApiError, CarehooksConnectionError } from "./api-error.js";
import { type BackoffPolicy, backoffDelay, isRetryableStatus, parseRetryAfter, sleep } from "./backoff.js";

export type HttpMethod = "GET" | "POST" | "PATCH" | "DELETE";

export type QueryValue = string | number | boolean | Date | null | undefined;

/** Per-call options of every client method. */
export interface CallOptions {
  /** Aborts the call, retries included. */
  readonly signal?: AbortSignal;
  /** For POST and PATCH: your own `Idempotency-Key` (1–255 printable ASCII) instead of a generated one. */
  readonly idempotencyKey?: string;
}

export interface RequestSpec extends CallOptions {
  readonly method: HttpMethod;
  readonly path: string;
  readonly query?: Readonly<Record<string, QueryValue>>;
  readonly body?: unknown;
  /** Attach the access token (default true). */
  readonly auth?: boolean;
  /** Send an Idempotency-Key and retry (default: true for POST and PATCH). */
  readonly idempotent?: boolean;
  /** Retry on 429, 5xx and network errors (default: unless it is a POST or PATCH sent without an Idempotency-Key). */
  readonly retry?: boolean;
}

/** Supplies access tokens to the transport. */
export interface TokenSource {
  accessToken(): Promise<string>;
  /** The server refused `token`: forget it, so the next call renews. */
  invalidate(token: string): void;
}

export interface TransportOptions {
  readonly baseUrl: string;
  readonly fetch: typeof fetch;
  readonly timeoutMs: number;
  readonly backoff: BackoffPolicy;
  readonly userAgent?: string;
}

export class Transport {
  readonly #options: TransportOptions;
  readonly #base: string;
  tokens: TokenSource | undefined;

  constructor(options: TransportOptions) {
    this.#options = options;
    this.#base = options.baseUrl.replace(/\/+$/, "");
  }

  async request<T>(spec: RequestSpec): Promise<T> {
    const { method, path } = spec;
    const auth = spec.auth ?? true;
    const writes = method === "POST" || method === "PATCH";
    const idempotencyKey = writes && (spec.idempotent ?? true) ? (spec.idempotencyKey ?? randomUUID()) : undefined;
    const retryable = spec.retry ?? (!writes || idempotencyKey !== undefined);
    const url = this.#url(path, spec.query);
    const body = spec.body === undefined ? undefined : JSON.stringify(spec.body);
    const { backoff } = this.#options;

    let retries = 0;
    let renewed = false;
    for (;;) {
      const token = auth ? await this.#tokens().accessToken() : undefined;
      const headers: Record<string, string> = {
        accept: "application/json",
      };
      // Browsers refuse to let a page set it; Node sends it.
      const userAgent = this.#options.userAgent ?? defaultUserAgent();
      if (userAgent !== undefined) headers["user-agent"] = userAgent;
      if (body !== undefined) headers["content-type"] = "application/json";
      if (token !== undefined) headers.authorization = `Bearer ${token}`;
      if (idempotencyKey !== undefined) headers["idempotency-key"] = idempotencyKey;

      const timeout = AbortSignal.timeout(this.#options.timeoutMs);
      const signal = spec.signal ? AbortSignal.any([spec.signal, timeout]) : timeout;
      let response: Response;
      try {
        response = await this.#options.fetch(url, { method, headers, body, signal });
      } catch (error) {
        if (spec.signal?.aborted) throw spec.signal.reason;
        if (retryable && retries < backoff.maxRetries) {
          await sleep(backoffDelay(backoff, retries++), spec.signal);
          continue;
        }
        throw new CarehooksConnectionError({ timedOut: timeout.aborted, method, path, cause: error });
      }

      if (response.ok) return (await readJson(response, method, path)) as T;

      const error = await toApiError(response, method, path);
      if (response.status === 401 && token !== undefined && !renewed) {
        // The token expired early or was revoked: renew once (refresh, else log in) and try again.
        renewed = true;
        this.#tokens().invalidate(token);
        continue;
      }
      if (retryable && isRetryableStatus(response.status) && retries < backoff.maxRetries) {
        const wait = error.retryAfterMs ?? backoffDelay(backoff, retries);
        if (wait <= backoff.maxRetryAfterMs) {
          retries++;
          await sleep(wait, spec.signal);
          continue;
        }
      }
      throw error;
    }
  }

  #tokens(): TokenSource {
    if (!this.tokens) throw new Error("the transport has no token source");
    return this.tokens;
  }

  #url(path: string, query: RequestSpec["query"]): string {
    const url = new URL(this.#base + path);
    for (const [name, value] of Object.entries(query ?? {})) {
      if (value === undefined || value === null) continue;
      url.searchParams.set(name, value instanceof Date ? value.toISOString() : String(value));
    }
    return url.toString();
  }
}

/** `carehooks-sdk/0.1.0 node/20.x` in Node; none in a browser, which sends its own. */
function defaultUserAgent(): string | undefined {
  const node = (globalThis as { process?: { versions?: { node?: string } } }).process?.versions?.node;
  return node === undefined ? undefined : `carehooks-sdk/${SDK_VERSION} node/${node}`;
}

/**
 * A v4 UUID from Web Crypto (Node 20 and browsers alike). `randomUUID` exists
 * only in secure contexts, so a dashboard served over plain http on a LAN
 * falls back to `getRandomValues`, which exists everywhere.
 */
function randomUUID(): string {
  const webCrypto = globalThis.crypto;
  if (typeof webCrypto.randomUUID === "function") return webCrypto.randomUUID();
  const bytes = webCrypto.getRandomValues(new Uint8Array(16));
  bytes[6] = ((bytes[6] as number) & 0x0f) | 0x40;
  bytes[8] = ((bytes[8] as number) & 0x3f) | 0x80;
  const hex = [...bytes].map((byte) => byte.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

async function readJson(response: Response, method: string, path: string): Promise<unknown> {
  const text = await response.text();
  if (text === "") return undefined;
  try {
    return JSON.parse(text);
  } catch {
    throw new CarehooksApiError({
      status: response.status,
      code: "INVALID_RESPONSE",
      message: `the API answered ${response.status} with a body that is not JSON`,
      requestId: response.headers.get("x-request-id") ?? undefined,
      method,
      path,
    });
  }
}

async function toApiError(response: Response, method: string, path: string): Promise<CarehooksApiError> {
  let detail: { code?: unknown; message?: unknown; request_id?: unknown } | undefined;
  try {
    const body = JSON.parse(await response.text()) as { error?: unknown };
    if (typeof body?.error === "object" && body.error !== null) detail = body.error as typeof detail;
  } catch {
    // Not our JSON (a proxy's HTML page, say): the status tells what there is to tell.
  }
  return new CarehooksApiError({
    status: response.status,
    code: typeof detail?.code === "string" ? detail.code : undefined,
    message: typeof detail?.message === "string" ? detail.message : undefined,
    requestId:
      (typeof detail?.request_id === "string" ? detail.request_id : undefined) ??
      response.headers.get("x-request-id") ??
      undefined,
    retryAfterMs: parseRetryAfter(response.headers.get("retry-after")),
    method,
    path,
  });
}
