/**
 * Authenticates every route that names a scope, and checks the scope. The
 * client comes from the per-process cache (store/caches.ts): a revocation
 * takes effect at once in the process that made it, and in every other at
 * its next request on SQLite, within CAREHOOKS_CACHE_STALENESS on PostgreSQL.
 */
import type { FastifyRequest } from "fastify";
import { forbidden, unauthorized } from "../domain/errors.js";
import { auditRead } from "./audit.js";
import type { AppContext } from "./context.js";

const INVALID_TOKEN = "the access token is invalid (not one this server issued, or altered): log in again";

/** `Authorization: Bearer <token>`, or the legacy `auth: <token>` header. */
function tokenOf(request: FastifyRequest): string | undefined {
  const bearer = (value: unknown) => (typeof value === "string" ? /^Bearer\s+(\S+)\s*$/i.exec(value)?.[1] : undefined);
  const fromAuthorization = bearer(request.headers.authorization);
  if (fromAuthorization) return fromAuthorization;
  const legacy = request.headers.auth;
  if (typeof legacy !== "string" || legacy.trim() === "") return undefined;
  return bearer(legacy) ?? legacy.trim();
}

export function authenticate(ctx: AppContext) {
  return async (request: FastifyRequest): Promise<void> => {
    const scope = request.routeOptions.config.scope;
    if (!scope) return;
    const token = tokenOf(request);
    if (!token) throw unauthorized("missing token: send Authorization: Bearer <access_token>");
    const claims = await ctx.tokens.check(token);
    if (claims === "expired") {
      throw unauthorized(
        "the access token has expired: refresh it (POST /connect-auth/v1/account/refresh) or log in again",
        "the access token expired",
      );
    }
    if (claims === "invalid") throw unauthorized(INVALID_TOKEN, "the access token is invalid");
    const client = await ctx.caches.clients.get(ctx.db, claims.clientId);
    if (!client || client.business_id !== claims.businessId) throw unauthorized(INVALID_TOKEN, "unknown client");
    if (client.revoked_at !== null) throw unauthorized("this client has been revoked", "the client was revoked");
    // A token may carry fewer scopes than its client (a read-only portal session), never more.
    const scopes = claims.scopes ? client.scopes.filter((held) => claims.scopes?.includes(held)) : client.scopes;
    request.principal = {
      clientId: client.id,
      businessId: client.business_id,
      scopes,
      tokenExpiresAt: claims.expiresAt,
    };
    if (!scopes.includes(scope)) {
      const resourceType = request.routeOptions.config.audit;
      if (resourceType) {
        const id = (request.params as { id?: unknown } | undefined)?.id;
        await auditRead(ctx, request, request.principal, {
          resourceType,
          // Before validation: only an id-shaped value is recorded.
          ...(typeof id === "string" && /^[A-Za-z0-9_-]{1,64}$/.test(id) ? { resourceId: id } : {}),
          outcome: "forbidden",
        });
      }
      throw forbidden(`this client lacks the ${scope} scope`);
    }
  };
}
