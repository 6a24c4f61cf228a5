/** The HTTP client of the integrator commands: logs in, refreshes, and turns error answers into messages. */
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

interface Tokens {
  access_token: string;
  expires_in: number;
  refresh_token: string;
}

export class Api {
  #tokens: Tokens | undefined;
  #expiresAt = 0;

  constructor(readonly profile: Profile) {}

  async #post<T>(path: string, body: unknown, token?: string): Promise<T> {
    return this.#fetch<T>("POST", path, body, token);
  }

  async #fetch<T>(
    method: string,
    path: string,
    body: unknown,
    token?: string,
    headers: Record<string, string> = {},
  ): Promise<T> {
    let response: Response;
    try {
      response = await fetch(`${this.profile.url}${path}`, {
        method,
        headers: {
          ...(body === undefined ? {} : { "content-type": "application/json" }),
          ...(token ? { authorization: `Bearer ${token}` } : {}),
          ...headers,
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        signal: AbortSignal.timeout(30_000),
      });
    } catch (error) {
      throw new Error(describeNetworkError(this.profile.url, error));
    }
    const text = await response.text();
    const parsed = text === "" ? undefined : (JSON.parse(text) as unknown);
    if (!response.ok) {
      const error = (parsed as { error?: { code?: string; message?: string; request_id?: string } } | undefined)?.error;
      throw new ApiCallError(
        response.status,
        error?.code ?? `HTTP_${response.status}`,
        error?.message ?? text,
        error?.request_id,
      );
    }
    return parsed as T;
  }

  /** A valid access token: logs in, or refreshes shortly before expiry. */
  async token(): Promise<string> {
    if (this.#tokens && Date.now() < this.#expiresAt) return this.#tokens.access_token;
    if (this.#tokens) {
      try {
        this.#store(
          await this.#post<Tokens>("/connect-auth/v1/account/refresh", { refresh_token: this.#tokens.refresh_token }),
        );
        return (this.#tokens as Tokens).access_token;
      } catch {
        // fall through to a fresh login
      }
    }
    this.#store(
      await this.#post<Tokens>("/connect-auth/v1/account/login", {
        client_id: this.profile.client_id,
        client_secret: this.profile.client_secret,
      }),
    );
    return (this.#tokens as Tokens).access_token;
  }

  #store(tokens: Tokens): void {
    this.#tokens = tokens;
    this.#expiresAt = Date.now() + Math.max(5, tokens.expires_in - 30) * 1000;
  }

  async request<T>(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<T> {
    return this.#fetch<T>(method, path, body, await this.token(), headers);
  }

  /** Every item of a cursor-paged list. */
  async *pages<T>(path: string, query: Record<string, string | undefined> = {}): AsyncGenerator<T> {
    let cursor: string | null = null;
    do {
      const params = new URLSearchParams(
        Object.entries({ ...query, limit: "500", ...(cursor ? { cursor } : {}) }).filter(
          (entry): entry is [string, string] => entry[1] !== undefined,
        ),
      );
      const page: { data: T[]; next_cursor: string | null } = await this.request("GET", `${path}?${params}`);
      yield* page.data;
      cursor = page.next_cursor;
    } while (cursor);
  }
}
