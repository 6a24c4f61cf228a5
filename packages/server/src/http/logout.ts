/**
 * `POST /connect-auth/v1/account/logout`: a sign-out that outlives the page.
 * The refresh token's family is revoked, so a copy of it (a stolen one, or one
 * a closed tab never spent) renews nothing. Access tokens are not tracked: the
 * one the caller held expires on its own within CAREHOOKS_ACCESS_TOKEN_TTL.
 */
import { Type } from "@sinclair/typebox";
import { revokeRefreshFamily } from "../store/refresh-tokens.js";
import type { App, AppContext } from "./context.js";
import { errorResponses } from "./schemas.js";

export function logoutRoutes(app: App, ctx: AppContext): void {
  app.post(
    "/connect-auth/v1/account/logout",
    {
      schema: {
        tags: ["auth"],
        summary: "Revoke a refresh token and every token rotated from it (sign out)",
        description: "Answers 204 whether or not the token was known, so it tells nothing about other tokens.",
        body: Type.Object(
          { refresh_token: Type.String({ pattern: "^[\\x21-\\x7e]{1,256}$" }) },
          { additionalProperties: false },
        ),
        response: { 204: Type.Null(), ...errorResponses(400) },
      },
    },
    async (request, reply) => {
      await revokeRefreshFamily(ctx.db, request.body.refresh_token);
      return reply.status(204).send(null);
    },
  );
}
