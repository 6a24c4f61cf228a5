/**
 * Client-credential tokens, renewed transparently: shortly before the access
 * token expires it is refreshed with the refresh token (which the server then
 * spends), falling back to a fresh login when the refresh fails or the refresh
 * token itself has expired. Concurrent callers share one renewal, so a
 * rotating refresh token is never spent twice.
 */
import type { Transport } from "./transport.js";

/** Login and refresh answer this, in Eka Care's shape. */
export interface TokenPair {
  readonly access_token: string;
  /** Seconds. */
  readonly expires_in: number;
  readonly refresh_token: string;
  /** Seconds. */
  readonly refresh_expires_in: number;
  /** The client's scopes, space-separated. */
  readonly scope?: string;
}

interface HeldTokens {
  readonly access: string;
  /** Renew from this time on (a little before the access token expires). */
  readonly renewAt: number;
  readonly refresh: string;
  readonly refreshExpiresAt: number;
}

export const LOGIN_PATH = "/connect-auth/v1/account/login";
export const REFRESH_PATH = "/connect-auth/v1/account/refresh";

export class TokenManager {
  readonly #transport: Transport;
  readonly #clientId: string;
  readonly #clientSecret: string;
  readonly #now: () => number;
  #held: HeldTokens | undefined;
  #renewal: Promise<HeldTokens> | undefined;

  constructor(transport: Transport, clientId: string, clientSecret: string, now: () => number = Date.now) {
    this.#transport = transport;
    this.#clientId = clientId;
    this.#clientSecret = clientSecret;
    this.#now = now;
  }

  async accessToken(): Promise<string> {
    const held = this.#held;
    if (held && this.#now() < held.renewAt) return held.access;
    return (await this.#renew()).access;
  }

  invalidate(token: string): void {
    // Keep the refresh token: it is what renews the access token.
    if (this.#held?.access === token) this.#held = { ...this.#held, renewAt: 0 };
  }

  /** Logs in now, replacing any tokens held. */
  async login(signal?: AbortSignal): Promise<TokenPair> {
    const started = this.#now();
    const pair = await this.#transport.request<TokenPair>({
      method: "POST",
      path: LOGIN_PATH,
      body: { client_id: this.#clientId, client_secret: this.#clientSecret },
      auth: false,
      // A second login is harmless (it only issues another pair), so it may be retried without a key.
      idempotent: false,
      retry: true,
      ...(signal ? { signal } : {}),
    });
    this.#hold(pair, started);
    return pair;
  }

  // Shared by every caller, so it takes no caller's abort signal: one caller giving up must not fail the others.
  #renew(): Promise<HeldTokens> {
    this.#renewal ??= this.#refreshOrLogin().finally(() => {
      this.#renewal = undefined;
    });
    return this.#renewal;
  }

  async #refreshOrLogin(): Promise<HeldTokens> {
    const held = this.#held;
    if (held && this.#now() < held.refreshExpiresAt) {
      const started = this.#now();
      try {
        const pair = await this.#transport.request<TokenPair>({
          method: "POST",
          path: REFRESH_PATH,
          body: { refresh_token: held.refresh },
          auth: false,
          idempotent: false,
          // A repeated refresh would present a spent token; a failure falls back to logging in instead.
          retry: false,
        });
        return this.#hold(pair, started);
      } catch {
        // A spent, revoked or expired refresh token: log in again instead.
      }
    }
    this.#held = undefined;
    const started = this.#now();
    return this.#hold(await this.login(), started);
  }

  #hold(pair: TokenPair, issuedAt: number): HeldTokens {
    const lifetime = Math.max(0, pair.expires_in) * 1000;
    // Renew a little early: a fifth of the lifetime, at most a minute.
    const margin = Math.min(60_000, lifetime / 5);
    this.#held = {
      access: pair.access_token,
      renewAt: issuedAt + lifetime - margin,
      refresh: pair.refresh_token,
      refreshExpiresAt: issuedAt + Math.max(0, pair.refresh_expires_in) * 1000,
    };
    return this.#held;
  }
}
