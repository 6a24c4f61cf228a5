/**
 * `GET …/subscriptions/{id}/secret`: the one read that shows a signing key.
 * Anyone holding the key can forge webhooks, so it takes `webhooks:write`
 * (whoever can set a key may see it), not the `webhooks:read` of the reads.
 * An Ed25519 private key is never shown: receivers need only the public key.
 */
import { Type } from "@sinclair/typebox";
import { isEd25519Key } from "../domain/ed25519-keys.js";
import { invalidRequest, notFound } from "../domain/errors.js";
import { previousKeyStillSigning } from "../domain/signing-key.js";
import { isoTime } from "../domain/time.js";
import { findSubscription } from "../store/subscriptions.js";
import { type App, type AppContext, principalOf } from "./context.js";
import { errorResponses, IdParams } from "./schemas.js";

const Secret = Type.Object(
  {
    signing_key: Type.Union([Type.String(), Type.Null()], { description: "null: requests go unsigned." }),
    previous_signing_key: Type.Union([Type.String(), Type.Null()], {
      description: "The replaced key while it still signs alongside the new one, else null.",
    }),
    previous_key_expires_at: Type.Union([Type.String({ format: "date-time" }), Type.Null()]),
  },
  { title: "WebhookSecret" },
);

const BASE = "/notification/v1/connect/webhook/subscriptions";

export function subscriptionSecretRoute(app: App, ctx: AppContext): void {
  app.get(
    `${BASE}/:id/secret`,
    {
      config: { scope: "webhooks:write" },
      schema: {
        tags: ["webhooks"],
        summary: "Reveal a webhook's signing key",
        description:
          "The only call that shows a stored key; lists and gets say only whether a webhook is `signed`. An ed25519 webhook's private key is never shown (400): verify with the `public_key` of its read.",
        params: IdParams,
        response: {
          200: Type.Object({ data: Secret, msg: Type.Literal("success") }),
          ...errorResponses(400, 401, 403, 404),
        },
      },
    },
    async (request) => {
      const principal = principalOf(request);
      const row = await findSubscription(ctx.db, principal.businessId, request.params.id);
      if (!row) throw notFound("Webhook");
      const now = Date.now();
      const key = row.signing_key === null ? null : ctx.keyBox.open(row.signing_key);
      if (key !== null && isEd25519Key(key)) {
        throw invalidRequest(
          "this webhook signs with ed25519: its private key never leaves carehooks; verify with the public_key of GET …/subscriptions/{id}",
        );
      }
      const previous = previousKeyStillSigning(row, ctx.keyBox, now);
      request.log.info({ webhook: row.id, client: principal.clientId }, "signing key revealed");
      return {
        data: {
          signing_key: key,
          previous_signing_key: previous !== null && !isEd25519Key(previous) ? previous : null,
          previous_key_expires_at: previous === null ? null : isoTime(Number(row.previous_key_expires_at)),
        },
        msg: "success" as const,
      };
    },
  );
}
