/**
 * The integrator commands' API client: `@carehooks/sdk`'s `CarehooksClient`
 * (log-in and token renewal, retries with backoff, idempotency keys on
 * writes) for a stored profile, with its errors turned into what the CLI
 * prints: the API's code, message and request id, or the network cause.
 */
import { CarehooksApiError, CarehooksClient, CarehooksConnectionError, type HttpMethod } from "@carehooks/sdk/client";
import { version } from "../version.js";
import { describeNetworkError } from "./network-error.js";
import type { Profile } from "./profile.js";

export class ApiCallError extends Error {
  override name = "ApiCallError";
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly requestId: string | undefined,
  ) {
    super(`${code}: ${message}${requestId ? ` (request ${requestId})` : ""}`);
  }
}

export class Api {
  readonly #client: CarehooksClient;
  /** An access token of its own for the event stream, which the SDK's calls do not cover. */
  #streamToken: { value: string; expiresAt: number } | undefined;

  constructor(readonly profile: Profile) {
    this.#client = new CarehooksClient({
      baseUrl: profile.url,
      clientId: profile.client_id,
      clientSecret: profile.client_secret,
      userAgent: `carehooks-cli/${version}`,
      // A person is waiting: a couple of quick retries, then say what is wrong.
      maxRetries: 2,
      retryBaseDelayMs: 250,
    });
  }

  /** A valid access token (for the event stream): logs in, again shortly before it expires. */
  async token(): Promise<string> {
    if (this.#streamToken && Date.now() < this.#streamToken.expiresAt) return this.#streamToken.value;
    const pair = await this.#call(() => this.#client.login());
    this.#streamToken = {
      value: pair.access_token,
      expiresAt: Date.now() + Math.max(5, pair.expires_in - 30) * 1000,
    };
    return pair.access_token;
  }

  request<T>(method: string, path: string, body?: unknown): Promise<T> {
    return this.#call(() =>
      this.#client.request<T>({ method: method as HttpMethod, path, ...(body === undefined ? {} : { body }) }),
    );
  }

  /** Every item of a cursor-paged list. */
  async *pages<T>(path: string, query: Record<string, string | undefined> = {}): AsyncGenerator<T> {
    let cursor: string | null = null;
    do {
      const params = Object.fromEntries(
        Object.entries({ ...query, limit: "500", ...(cursor ? { cursor } : {}) }).filter(
          (entry): entry is [string, string] => entry[1] !== undefined,
        ),
      );
      const page: { data: T[]; next_cursor: string | null } = await this.#call(() =>
        this.#client.request({ method: "GET", path, query: params }),
      );
      yield* page.data;
      cursor = page.next_cursor;
    } while (cursor);
  }

  async #call<T>(call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (error) {
      if (error instanceof CarehooksApiError) {
        throw new ApiCallError(error.status, error.code, error.message, error.requestId);
      }
      if (error instanceof CarehooksConnectionError) {
        throw new Error(describeNetworkError(this.profile.url, error.cause ?? error));
      }
      throw error;
    }
  }
}
