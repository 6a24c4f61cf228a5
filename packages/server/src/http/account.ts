/** Eka-compatible client-credential login and refresh. */
import { Type } from "@sinclair/typebox";
import type { FastifyRequest } from "fastify";
import { ApiError, unauthorized } from "../domain/errors.js";
import { hashSecret, verifySecret } from "../domain/secrets.js";
import { RateLimiter } from "../ops/rate-limit.js";
import { WorkLimit, WorkLimitFull } from "../ops/work-limit.js";
import { findApiClient } from "../store/api-clients.js";
import { issueRefreshToken, rotateRefreshToken } from "../store/refresh-tokens.js";
import type { App, AppContext } from "./context.js";
import { errorResponses } from "./schemas.js";

const TokenPair = Type.Object(
  {
    access_token: Type.String(),
    expires_in: Type.Integer({ description: "seconds" }),
    refresh_token: Type.String(),
    refresh_expires_in: Type.Integer({ description: "seconds" }),
    scope: Type.String({
      description:
        "The client's scopes, space-separated (as OAuth 2.0 answers them), so a UI can hide what it cannot use",
      examples: ["webhooks:read webhooks:write"],
    }),
  },
  { title: "TokenPair" },
);

const LoginBody = Type.Object(
  {
    client_id: Type.String({ pattern: "^[A-Za-z0-9_-]{1,64}$" }),
    client_secret: Type.String({ pattern: "^[\\x21-\\x7e]{1,256}$" }),
  },
  { additionalProperties: false },
);

const RefreshBody = Type.Object(
  { refresh_token: Type.String({ pattern: "^[\\x21-\\x7e]{1,256}$" }) },
  { additionalProperties: false },
);

/** Logins allowed to queue for a credential check, per check allowed to run. */
const WAITING_PER_CHECK = 16;

function rateLimited(wait: number, what: string): ApiError {
  return new ApiError("RATE_LIMITED", `too many ${what}; retry in ${wait} s`, { "retry-after": String(wait) });
}

/**
 * A route's own hook, so it runs for whatever spelling of the path the router
 * matched (percent-encoded, with any query string), and for nothing else.
 */
export const throttleAddress = (limiter: RateLimiter, what: string) => async (request: FastifyRequest) => {
  const wait = limiter.hit(request.ip);
  if (wait !== undefined) throw rateLimited(wait, what);
};

export function accountRoutes(app: App, ctx: AppContext): void {
  // Separate budgets: a client refreshing often must not lock itself out of logging in.
  const perAddress = {
    login: new RateLimiter(ctx.config.loginRateLimit),
    refresh: new RateLimiter(ctx.config.loginRateLimit),
  };
  const failuresPerClient = new RateLimiter(ctx.config.loginRateLimitPerClient);
  const credentialChecks = new WorkLimit(ctx.config.credentialChecks, ctx.config.credentialChecks * WAITING_PER_CHECK);

  /** Runs a secret check within the cap, so a flood of logins cannot take the whole thread pool. */
  async function checkSecret(secret: string, hash: string): Promise<boolean> {
    try {
      return await credentialChecks.run(() => verifySecret(secret, hash));
    } catch (error) {
      if (!(error instanceof WorkLimitFull)) throw error;
      throw new ApiError("SERVICE_UNAVAILABLE", "too many logins in progress; retry shortly", { "retry-after": "1" });
    }
  }

  // Unknown client ids still pay for one scrypt, so timing does not tell which ids exist.
  const decoyHash = hashSecret("carehooks-decoy-secret");

  async function tokenPair(
    client: { id: string; business_id: string; scopes: readonly string[] },
    refreshToken: string,
  ) {
    return {
      access_token: await ctx.tokens.issue({ clientId: client.id, businessId: client.business_id }),
      expires_in: Math.round(ctx.config.accessTokenTtl / 1000),
      refresh_token: refreshToken,
      refresh_expires_in: Math.round(ctx.config.refreshTokenTtl / 1000),
      scope: client.scopes.join(" "),
    };
  }

  app.post(
    "/connect-auth/v1/account/login",
    {
      onRequest: throttleAddress(perAddress.login, "login attempts"),
      schema: {
        tags: ["auth"],
        summary: "Exchange client credentials for an access token and a refresh token",
        body: LoginBody,
        response: { 200: TokenPair, ...errorResponses(400, 401, 429, 503) },
      },
    },
    async (request) => {
      const { client_id, client_secret } = request.body;
      // Only failures count against a client id: a CLI that logs in on every run is not a guesser,
      // and once guesses fill the bucket even the right secret waits, so guessing cannot go on.
      const wait = failuresPerClient.blocked(client_id);
      if (wait !== undefined) throw rateLimited(wait, "failed login attempts for this client");
      const client = await findApiClient(ctx.db, client_id);
      const valid = await checkSecret(client_secret, client?.secret_hash ?? (await decoyHash));
      if (!client || !valid || client.revoked_at !== null) {
        failuresPerClient.hit(client_id);
        throw unauthorized("invalid client credentials");
      }
      const refreshToken = await issueRefreshToken(ctx.db, { clientId: client.id, ttlMs: ctx.config.refreshTokenTtl });
      return tokenPair(client, refreshToken);
    },
  );

  app.post(
    "/connect-auth/v1/account/refresh",
    {
      onRequest: throttleAddress(perAddress.refresh, "refresh attempts"),
      schema: {
        tags: ["auth"],
        summary: "Exchange a refresh token for a new pair; the old refresh token is spent",
        body: RefreshBody,
        response: { 200: TokenPair, ...errorResponses(400, 401, 429) },
      },
    },
    async (request) => {
      const outcome = await rotateRefreshToken(ctx.db, request.body.refresh_token, ctx.config.refreshTokenTtl);
      switch (outcome.kind) {
        case "invalid":
          throw unauthorized("invalid or expired refresh token");
        case "reused":
          throw unauthorized("this refresh token was already used; its family is revoked, log in again");
        case "rotated": {
          const client = await findApiClient(ctx.db, outcome.clientId);
          if (!client || client.revoked_at !== null) throw unauthorized("this client has been revoked");
          return tokenPair(client, outcome.token);
        }
      }
    },
  );
}
