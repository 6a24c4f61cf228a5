/**
 * Signing in and out. A session is one `CarehooksClient` (from the SDK) whose
 * tokens come from `SessionTokens`, plus what the pages need to know: which
 * scopes the client holds (pages it cannot use are hidden) and the branding.
 */
import { CarehooksClient } from "@carehooks/sdk/client";
import { type Grant, SessionTokens } from "./tokens.js";

export interface Branding {
  readonly product_name: string;
  readonly logo_url: string | null;
  readonly accent_color: string;
}

export interface Session {
  readonly client: CarehooksClient;
  readonly clientId: string;
  readonly scopes: ReadonlySet<string>;
  /** `portal`: opened from a portal-session link, signed in for one business, not renewable. */
  readonly kind: "credentials" | "portal";
  readonly readOnly: boolean;
  readonly branding: Branding | undefined;
  readonly tokens: SessionTokens;
}

interface TokenAnswer {
  readonly access_token: string;
  readonly expires_in: number;
  readonly refresh_token?: string;
  readonly scope?: string;
}

interface PortalAnswer extends TokenAnswer {
  readonly client_id: string;
  readonly read_only: boolean;
  readonly branding: Branding;
}

export const LOGIN_PATH = "/connect-auth/v1/account/login";
export const REFRESH_PATH = "/connect-auth/v1/account/refresh";
export const LOGOUT_PATH = "/connect-auth/v1/account/logout";
export const PORTAL_EXCHANGE_PATH = "/connect-auth/v1/portal-sessions/exchange";

const origin = () => window.location.origin;

/** A client for the calls made before there is a token (login, refresh, portal exchange). */
function anonymousClient(): CarehooksClient {
  return new CarehooksClient({
    baseUrl: origin(),
    maxRetries: 1,
    tokens: {
      accessToken: () => Promise.reject(new Error("not signed in")),
      invalidate: () => {},
    },
  });
}

/** A call made without a token: never retried, as a login or a spent link must not be repeated blindly. */
function postAnonymously<T>(client: CarehooksClient, path: string, body: unknown): Promise<T> {
  return client.request<T>({ method: "POST", path, body, auth: false, idempotent: false, retry: false });
}

function grantOf(answer: TokenAnswer): Grant {
  return { accessToken: answer.access_token, expiresIn: answer.expires_in, refreshToken: answer.refresh_token };
}

function scopesOf(answer: TokenAnswer): Set<string> {
  return new Set((answer.scope ?? "").split(/\s+/).filter(Boolean));
}

function clientFor(tokens: SessionTokens): CarehooksClient {
  return new CarehooksClient({ baseUrl: origin(), tokens, maxRetries: 2, timeoutMs: 20_000 });
}

export async function signIn(
  clientId: string,
  clientSecret: string,
  onEnded: (reason: string) => void,
): Promise<Session> {
  const anonymous = anonymousClient();
  const answer = await postAnonymously<TokenAnswer>(anonymous, LOGIN_PATH, {
    client_id: clientId,
    client_secret: clientSecret,
  });
  // The secret is not kept: from here on the refresh token renews the session.
  const renew = async (refreshToken: string) =>
    grantOf(await postAnonymously<TokenAnswer>(anonymous, REFRESH_PATH, { refresh_token: refreshToken }));
  const tokens = new SessionTokens(grantOf(answer), renew, onEnded);
  return {
    client: clientFor(tokens),
    clientId,
    scopes: scopesOf(answer),
    kind: "credentials",
    readOnly: false,
    branding: undefined,
    tokens,
  };
}

/** Spends a portal session's single-use token for a signed-in session of its business. */
export async function openPortal(token: string, onEnded: (reason: string) => void): Promise<Session> {
  const answer = await postAnonymously<PortalAnswer>(anonymousClient(), PORTAL_EXCHANGE_PATH, { token });
  const tokens = new SessionTokens(grantOf(answer), undefined, onEnded);
  return {
    client: clientFor(tokens),
    clientId: answer.client_id,
    scopes: scopesOf(answer),
    kind: "portal",
    readOnly: answer.read_only,
    branding: answer.branding,
    tokens,
  };
}

/**
 * Forgets the tokens at once, and revokes the refresh token on the server so
 * that no copy of it renews the session; a failure there changes nothing for
 * the page (the access token expires on its own).
 */
export function signOut(session: Session): Promise<void> {
  const refreshToken = session.tokens.refreshToken;
  session.tokens.end();
  if (!refreshToken) return Promise.resolve();
  return postAnonymously(anonymousClient(), LOGOUT_PATH, { refresh_token: refreshToken }).then(
    () => {},
    () => {},
  );
}

export function can(session: Session, scope: string): boolean {
  return session.scopes.has(scope);
}
