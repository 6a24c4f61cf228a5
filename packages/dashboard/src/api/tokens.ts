/**
 * The signed-in session's tokens, in memory only (never in storage, so closing
 * the tab ends the session). A sign-in holds a refresh token and renews the
 * access token on a timer a little before it expires, so an idle page stays
 * signed in; a portal session has no refresh token and simply ends.
 */
import type { TokenSource } from "@carehooks/sdk/client";

export interface Grant {
  readonly accessToken: string;
  /** Seconds. */
  readonly expiresIn: number;
  readonly refreshToken?: string | undefined;
}

/** Renews a grant: exchanges the refresh token for a new one. */
export type Renew = (refreshToken: string) => Promise<Grant>;

export class SessionEnded extends Error {
  constructor(message: string) {
    super(message);
    this.name = "SessionEnded";
  }
}

/** Renew when a fifth of the lifetime is left, at most a minute before expiry. */
export function renewDelay(expiresInSeconds: number): number {
  const lifetime = Math.max(0, expiresInSeconds) * 1000;
  return Math.max(0, lifetime - Math.min(60_000, lifetime / 5));
}

export class SessionTokens implements TokenSource {
  #grant: Grant;
  #expiresAt: number;
  #renewAt: number;
  #renewal: Promise<void> | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #ended = false;

  constructor(
    grant: Grant,
    private readonly renew: Renew | undefined,
    private readonly onEnded: (reason: string) => void,
  ) {
    this.#grant = grant;
    this.#expiresAt = 0;
    this.#renewAt = 0;
    this.#hold(grant);
  }

  get expiresAt(): number {
    return this.#expiresAt;
  }

  /** The refresh token held now (none for a portal session, or after the end). */
  get refreshToken(): string | undefined {
    return this.#grant.refreshToken;
  }

  async accessToken(): Promise<string> {
    if (this.#ended) throw new SessionEnded("signed out");
    if (Date.now() >= this.#renewAt) await this.#renewNow();
    return this.#grant.accessToken;
  }

  invalidate(token: string): void {
    if (token === this.#grant.accessToken) this.#renewAt = 0;
  }

  /** Forgets everything and stops the timer. */
  end(): void {
    this.#ended = true;
    clearTimeout(this.#timer);
    this.#grant = { accessToken: "", expiresIn: 0 };
  }

  #hold(grant: Grant): void {
    this.#grant = grant;
    const delay = renewDelay(grant.expiresIn);
    this.#expiresAt = Date.now() + grant.expiresIn * 1000;
    this.#renewAt = Date.now() + delay;
    clearTimeout(this.#timer);
    this.#timer = setTimeout(
      () => void this.#renewNow().catch(() => {}),
      grant.refreshToken ? delay : grant.expiresIn * 1000,
    );
  }

  #renewNow(): Promise<void> {
    this.#renewal ??= this.#renewOnce().finally(() => {
      this.#renewal = undefined;
    });
    return this.#renewal;
  }

  async #renewOnce(): Promise<void> {
    const refresh = this.#grant.refreshToken;
    if (!refresh || !this.renew) {
      if (Date.now() < this.#expiresAt) return;
      this.#finish("This session has ended. Open a new link to continue.");
    }
    try {
      this.#hold(await this.renew!(refresh!));
    } catch {
      this.#finish("Your session ended: sign in again.");
    }
  }

  #finish(reason: string): never {
    this.end();
    this.onEnded(reason);
    throw new SessionEnded(reason);
  }
}
