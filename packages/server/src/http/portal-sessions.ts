/**
 * Portal sessions, for embedding the dashboard in a clinic platform: a client
 * with webhooks:write asks for a link; whoever opens it gets the dashboard
 * signed in for that business, read-only or read-write, without a secret.
 *
 * The link is single-use and short-lived: its token (in the URL fragment, so
 * it reaches neither server logs nor Referer headers) is stored only as a
 * hash and spent by one conditional UPDATE. Spending it answers an access
 * token narrowed to the session's scopes, valid for CAREHOOKS_PORTAL_SESSION_TTL
 * and not renewable: the platform makes a new link when it ends.
 */
import { createHash, randomBytes } from "node:crypto";
import { Type } from "@sinclair/typebox";
import { forbidden, unauthorized } from "../domain/errors.js";
import { newId } from "../domain/ids.js";
import type { Scope } from "../domain/scopes.js";
import { isoTime } from "../domain/time.js";
import { RateLimiter } from "../ops/rate-limit.js";
import { findApiClient } from "../store/api-clients.js";
import { insertPortalSession, spendPortalSession } from "../store/portal-sessions.js";
import { throttleAddress } from "./account.js";
import { type App, type AppContext, principalOf } from "./context.js";
import { errorResponses } from "./schemas.js";

const TOKEN_PREFIX = "chp_";
const MAX_LINK_SECONDS = 7 * 24 * 3600;

const Branding = Type.Object(
  {
    product_name: Type.Optional(Type.String({ minLength: 1, maxLength: 80 })),
    logo_url: Type.Optional(
      Type.Union([
        Type.String({
          maxLength: 2048,
          pattern: "^(https://|/)[\\x21-\\x7e]*$",
          description: "An https: URL, or a path on this server",
        }),
        Type.Null(),
      ]),
    ),
    accent_color: Type.Optional(Type.String({ pattern: "^#[0-9a-fA-F]{6}$", description: "#rrggbb" })),
  },
  { title: "Branding", additionalProperties: false },
);

const CreateBody = Type.Object(
  {
    read_only: Type.Optional(Type.Boolean({ default: false, description: "Only webhooks:read in the portal" })),
    expires_in: Type.Optional(
      Type.Integer({
        minimum: 60,
        maximum: MAX_LINK_SECONDS,
        description: "Seconds the link stays valid before it is opened (default CAREHOOKS_PORTAL_URL_TTL)",
      }),
    ),
    branding: Type.Optional(Branding),
  },
  { additionalProperties: false },
);

const PortalSession = Type.Object(
  {
    id: Type.String(),
    url: Type.String({ description: "Open it once, before expires_at; it signs the browser in for the business" }),
    expires_at: Type.String({ format: "date-time" }),
    read_only: Type.Boolean(),
    session_expires_in: Type.Integer({ description: "Seconds the opened portal stays signed in" }),
  },
  { title: "PortalSession" },
);

const ExchangeBody = Type.Object(
  { token: Type.String({ pattern: "^chp_[A-Za-z0-9_-]{20,100}$" }) },
  { additionalProperties: false },
);

const ExchangeAnswer = Type.Object({
  access_token: Type.String(),
  expires_in: Type.Integer({ description: "seconds; not renewable" }),
  scope: Type.String(),
  client_id: Type.String(),
  read_only: Type.Boolean(),
  branding: Type.Object({
    product_name: Type.String(),
    logo_url: Type.Union([Type.String(), Type.Null()]),
    accent_color: Type.String(),
  }),
});

export function hashPortalToken(token: string): string {
  return createHash("sha256").update(token).digest("hex");
}

export function portalSessionRoutes(app: App, ctx: AppContext): void {
  const tags = ["portal"];

  app.post(
    "/notification/v1/connect/webhook/portal-sessions",
    {
      config: { scope: "webhooks:write" },
      schema: {
        tags,
        summary: "Make a single-use link that opens the dashboard signed in for this business",
        description:
          "For embedding the integrator portal (link or iframe). The link opens once, within expires_in; branding overrides the configured one for this session.",
        body: CreateBody,
        response: {
          201: Type.Object({ data: PortalSession, msg: Type.Literal("success") }),
          ...errorResponses(400, 401, 403),
        },
      },
    },
    async (request, reply) => {
      const principal = principalOf(request);
      // The portal is a reading tool first: a client that cannot read webhooks cannot open one.
      if (!principal.scopes.includes("webhooks:read"))
        throw forbidden("a portal session needs the webhooks:read scope too");
      const now = Date.now();
      const readOnly = request.body.read_only ?? false;
      const linkMs = (request.body.expires_in ?? 0) * 1000 || ctx.config.portalUrlTtl;
      const token = `${TOKEN_PREFIX}${randomBytes(32).toString("base64url")}`;
      const id = newId("portalSession", now);
      const branding = request.body.branding;
      await insertPortalSession(ctx.db, {
        id,
        business_id: principal.businessId,
        client_id: principal.clientId,
        token_hash: hashPortalToken(token),
        read_only: readOnly ? 1 : 0,
        branding: branding && Object.keys(branding).length > 0 ? JSON.stringify(branding) : null,
        expires_at: now + linkMs,
        used_at: null,
        created_at: now,
      });
      const base = ctx.config.publicUrl?.replace(/\/+$/, "") ?? `${request.protocol}://${request.host}`;
      reply.status(201);
      return {
        data: {
          id,
          url: `${base}/dashboard/portal#token=${token}`,
          expires_at: isoTime(now + linkMs),
          read_only: readOnly,
          session_expires_in: Math.round(ctx.config.portalSessionTtl / 1000),
        },
        msg: "success" as const,
      };
    },
  );

  // The login rate limit applies, per address, so tokens cannot be guessed at speed.
  const exchanges = new RateLimiter(ctx.config.loginRateLimit);
  app.post(
    "/connect-auth/v1/portal-sessions/exchange",
    {
      onRequest: throttleAddress(exchanges, "portal link attempts"),
      schema: {
        tags,
        summary: "Spend a portal link's token for an access token (the dashboard does this when the link opens)",
        body: ExchangeBody,
        response: { 200: ExchangeAnswer, ...errorResponses(400, 401, 429) },
      },
    },
    async (request) => {
      const now = Date.now();
      const session = await spendPortalSession(ctx.db, hashPortalToken(request.body.token), now);
      if (!session) throw unauthorized("this portal link is invalid, expired or already used: ask for a new one");
      const client = await findApiClient(ctx.db, session.client_id);
      if (!client || client.revoked_at !== null || client.business_id !== session.business_id) {
        throw unauthorized("the client that made this portal link has been revoked");
      }
      const wanted: Scope[] = session.read_only ? ["webhooks:read"] : ["webhooks:read", "webhooks:write"];
      const scopes = wanted.filter((scope) => client.scopes.includes(scope));
      const override = session.branding === null ? {} : (JSON.parse(session.branding) as Record<string, unknown>);
      return {
        access_token: await ctx.tokens.issue(
          { clientId: client.id, businessId: client.business_id, scopes },
          now,
          ctx.config.portalSessionTtl,
        ),
        expires_in: Math.round(ctx.config.portalSessionTtl / 1000),
        scope: scopes.join(" "),
        client_id: client.id,
        read_only: session.read_only === 1,
        branding: {
          product_name: ctx.config.brandName,
          logo_url: ctx.config.brandLogoUrl ?? null,
          accent_color: ctx.config.brandAccentColor,
          ...override,
        },
      };
    },
  );
}
