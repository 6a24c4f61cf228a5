/** Webhook subscriptions: the Eka-compatible register/list/get/update/delete, plus enable and disable. */
import { type Static, Type } from "@sinclair/typebox";
import type { FastifyRequest } from "fastify";
import type { Updateable } from "kysely";
import { checkCustomHeaders, HEADER_LIMITS, MASK, maskedHeaders } from "../domain/custom-headers.js";
import { checkDeliverySettings, MAX_RATE_LIMIT, ORDERINGS } from "../domain/delivery-settings.js";
import { publicKeyOf } from "../domain/ed25519-keys.js";
import { invalidRequest, notFound } from "../domain/errors.js";
import { EVENT_NAMES, FILTER_FIELDS } from "../domain/event-catalog.js";
import { compileFilter, FILTER_LIMITS } from "../domain/event-filter.js";
import { newId } from "../domain/ids.js";
import type { KeyBox } from "../domain/key-box.js";
import { previousKeyStillSigning } from "../domain/signing-key.js";
import { checkEndpointInput, eventNamesOf } from "../domain/subscription-input.js";
import { isoTime } from "../domain/time.js";
import { announceChanges, forgetChanges, subscriptionsChanged } from "../store/changes.js";
import { cancelPendingDeliveries, keyLateDeliveries, keyOpenDeliveries } from "../store/deliveries.js";
import type { Db } from "../store/open.js";
import type { SubscriptionTable } from "../store/schema.js";
import {
  findSubscription,
  insertSubscription,
  listSubscriptions,
  type SubscriptionRow,
  updateSubscription,
} from "../store/subscriptions.js";
import { type App, type AppContext, principalOf } from "./context.js";
import { decodeCursor, toPage } from "./pagination.js";
import { EmptyBody, errorResponses, IdParams, ListPage, ListQuery } from "./schemas.js";
import { nextKeyOf, SIGNATURE_SCHEMES, schemeOf } from "./subscription-keys.js";
import { retryWrite, runWrite } from "./writes.js";

const BASE = "/notification/v1/connect/webhook/subscriptions";

const EventNameList = Type.Array(Type.String({ maxLength: 100 }), { maxItems: 50 });
const EventNameFields = {
  event_names: Type.Optional(EventNameList),
  scopes: Type.Optional({ ...EventNameList, description: "Legacy alias of event_names." }),
  scope: Type.Optional(Type.Union([Type.String({ maxLength: 1000 }), EventNameList], { description: "Legacy alias." })),
};
const SigningKey = Type.String({
  maxLength: 256,
  description: "16–256 printable ASCII characters; `whsec_` + base64 of 24–64 bytes for Standard Webhooks keys.",
});
const Protocol = Type.Union([Type.Literal("http"), Type.Literal("https")]);

const Ordering = Type.Union(
  ORDERINGS.map((ordering) => Type.Literal(ordering)),
  {
    description:
      "`per_resource`: the events of one appointment or prescription reach this webhook one at a time, in the order they were written; the next waits until the previous has succeeded, failed or been cancelled. Others go in parallel. Default `none`.",
  },
);
const MaxInFlight = Type.Union([Type.Integer(), Type.Null()], {
  description:
    "Requests open to this webhook at once: 1 to the server's CAREHOOKS_MAX_IN_FLIGHT_PER_ENDPOINT; null for that default.",
});
const RateLimit = Type.Union([Type.Integer(), Type.Null()], {
  description: `Requests per second to this webhook, 1 to ${MAX_RATE_LIMIT} (bursts of up to one second's worth); null for none.`,
});
const Timeout = Type.Union([Type.Integer(), Type.Null()], {
  description:
    "Seconds an attempt to this webhook may take, connect to last byte: 1 to the server's CAREHOOKS_REQUEST_TIMEOUT; null for that default.",
});
const RetrySchedule = Type.Union([Type.Array(Type.Integer(), { maxItems: 100 }), Type.Null()], {
  description:
    "Seconds to wait after each failed attempt (±20 % jitter), at most as many delays as the server's CAREHOOKS_RETRY_SCHEDULE; [] sends once, never retrying; null for the server's schedule.",
  examples: [[10, 60, 600, 3600]],
});
const Filter = Type.Union([Type.Record(Type.String(), Type.Unknown()), Type.Null()], {
  description: `Conditions on the event's payload; an event that does not match creates no delivery. Keys are dotted payload paths (${[
    ...FILTER_FIELDS,
  ]
    .filter((field) => field.startsWith("data."))
    .slice(0, 4)
    .join(
      ", ",
    )}, …); a bare value means $eq; operators $eq, $neq, $in, $nin, $exists; logic $and, $or, $not. At most ${FILTER_LIMITS.bytes} bytes, ${FILTER_LIMITS.conditions} conditions. null: every event asked for.`,
  examples: [{ "data.clinic_id": { $in: ["clinic-7", "clinic-9"] }, "data.action": "completed" }],
});
const CustomHeaders = Type.Union([Type.Record(Type.String(), Type.String()), Type.Null()], {
  description: `Static headers sent with every attempt (at most ${HEADER_LIMITS.count}); never content-type, user-agent, the webhook-*/eka-* headers or hop-by-hop headers. Reads show the names only, every value as "${MASK}" (send real values again when changing them). null: none.`,
  examples: [{ "x-gateway-token": "gw_5f2c…", "x-clinic-region": "south" }],
});
const SettingsFields = {
  ordering: Type.Optional(Ordering),
  max_in_flight: Type.Optional(MaxInFlight),
  rate_limit: Type.Optional(RateLimit),
  timeout: Type.Optional(Timeout),
  retry_schedule: Type.Optional(RetrySchedule),
  filter: Type.Optional(Filter),
  headers: Type.Optional(CustomHeaders),
};

const Scheme = Type.Union(
  SIGNATURE_SCHEMES.map((scheme) => Type.Literal(scheme)),
  {
    description:
      "`hmac-sha256` (default): a shared key signs both signature headers. `ed25519`: carehooks generates a key pair, signs `webhook-signature` with `v1a` entries (Standard Webhooks' asymmetric form) and sends no `eka-webhook-signature`; receivers verify with `public_key`. Changing it generates the new scheme's key; the replaced key keeps signing through CAREHOOKS_KEY_OVERLAP.",
  },
);
const PublicKey = Type.String({
  description: "An Ed25519 public key: `whpk_` and the base64 of its 32 bytes.",
  examples: ["whpk_8o3VGYnYTmvp1zKQ2Qv3xmYFYnFv3oN0m2W4Vv8ZbqA="],
});

const GenerateSigningKey = Type.Boolean({
  description:
    "Have carehooks generate a `whsec_` key; the answer shows it this once (`GET …/{id}/secret` shows it again). Not with `signing_key`.",
});

const CreateBody = Type.Object(
  {
    endpoint: Type.String({ maxLength: 4096, examples: ["https://clinic-app.example/webhooks/carehooks"] }),
    ...EventNameFields,
    signing_key: Type.Optional(Type.Union([SigningKey, Type.Null()])),
    generate_signing_key: Type.Optional(GenerateSigningKey),
    signature_scheme: Type.Optional(Scheme),
    protocol: Type.Optional(Protocol),
    ...SettingsFields,
  },
  { title: "NewWebhook", additionalProperties: false },
);

const UpdateBody = Type.Object(
  {
    endpoint: Type.Optional(Type.String({ maxLength: 4096 })),
    ...EventNameFields,
    signing_key: Type.Optional(
      Type.Union([SigningKey, Type.Null()], { description: "null removes the key: requests go unsigned." }),
    ),
    generate_signing_key: Type.Optional(GenerateSigningKey),
    expire_previous_key: Type.Optional(
      Type.Boolean({ description: "Stop signing with the replaced key now instead of after CAREHOOKS_KEY_OVERLAP." }),
    ),
    signature_scheme: Type.Optional(Scheme),
    protocol: Type.Optional(Protocol),
    ...SettingsFields,
  },
  { title: "WebhookChange", additionalProperties: false },
);

export const Webhook = Type.Object(
  {
    id: Type.String({ examples: ["wh_01JDQ3Z6M1X8V4N7R2T5Y9B0C3"] }),
    endpoint: Type.String(),
    event_names: Type.Array(Type.String({ enum: [...EVENT_NAMES] })),
    signed: Type.Boolean({
      description: "Whether requests carry signatures. The key itself is never in a read: see `GET …/{id}/secret`.",
    }),
    signature_scheme: Type.Union([Scheme, Type.Null()], { description: "null: unsigned." }),
    public_key: Type.Union([PublicKey, Type.Null()], {
      description: "An ed25519 webhook's public key, to verify its requests with; null for other webhooks.",
    }),
    previous_public_key: Type.Union([PublicKey, Type.Null()], {
      description: "After a rotation of an ed25519 webhook: the replaced key's public key while it still signs.",
    }),
    protocol: Protocol,
    client_id: Type.String(),
    state: Type.Union([Type.Literal("active"), Type.Literal("degraded"), Type.Literal("disabled")]),
    state_reason: Type.Union([Type.String(), Type.Null()]),
    state_changed_at: Type.String({ format: "date-time" }),
    previous_key_expires_at: Type.Union([Type.String({ format: "date-time" }), Type.Null()], {
      description: "After a key rotation: until when the replaced key keeps signing alongside the new one",
    }),
    ordering: Ordering,
    max_in_flight: MaxInFlight,
    rate_limit: RateLimit,
    timeout: Timeout,
    retry_schedule: RetrySchedule,
    filter: Filter,
    headers: CustomHeaders,
    created_at: Type.String({ format: "date-time" }),
    updated_at: Type.String({ format: "date-time" }),
    created_by: Type.String(),
    updated_by: Type.String(),
  },
  { title: "Webhook" },
);
export type Webhook = Static<typeof Webhook>;

const WebhookEnvelope = Type.Object({ data: Webhook, msg: Type.Literal("success") });
const StatusMessage = Type.Object({ status: Type.String(), msg: Type.Literal("success") });
const UpdateAnswer = Type.Object({
  status: Type.String(),
  msg: Type.Literal("success"),
  signing_key: Type.Optional({ ...SigningKey, description: "The generated key, shown this once." }),
  public_key: Type.Optional({ ...PublicKey, description: "The public key of a newly generated Ed25519 pair." }),
});

/**
 * A webhook as reads show it: whether it is signed, never with what (a reader
 * could forge requests; an ed25519 webhook shows its public key), and its
 * headers' names with every value masked.
 */
export function presentWebhook(row: SubscriptionRow, keyBox: KeyBox): Webhook {
  const key = row.signing_key === null ? null : keyBox.open(row.signing_key);
  const scheme = schemeOf(key);
  // Only while the old key still signs: an expired overlap is no longer worth showing.
  const previous = previousKeyStillSigning(row, keyBox, Date.now());
  return {
    id: row.id,
    endpoint: row.endpoint,
    event_names: JSON.parse(row.event_names) as string[],
    signed: key !== null,
    signature_scheme: scheme,
    public_key: key !== null && scheme === "ed25519" ? publicKeyOf(key) : null,
    previous_public_key: previous !== null && schemeOf(previous) === "ed25519" ? publicKeyOf(previous) : null,
    protocol: row.protocol as "http" | "https",
    client_id: row.client_id,
    state: row.state,
    state_reason: row.state_reason,
    state_changed_at: isoTime(row.state_changed_at),
    previous_key_expires_at: previous === null ? null : isoTime(Number(row.previous_key_expires_at)),
    ordering: row.ordering,
    max_in_flight: row.max_in_flight,
    rate_limit: row.rate_limit,
    timeout: row.timeout_ms === null ? null : Number(row.timeout_ms) / 1000,
    retry_schedule:
      row.retry_schedule === null ? null : (JSON.parse(row.retry_schedule) as number[]).map((ms) => ms / 1000),
    filter: row.filter === null ? null : (JSON.parse(row.filter) as Record<string, unknown>),
    headers: row.headers === null ? null : maskedHeaders(JSON.parse(keyBox.open(row.headers))),
    created_at: isoTime(row.created_at),
    updated_at: isoTime(row.updated_at),
    created_by: row.created_by,
    updated_by: row.updated_by,
  };
}

/** The options of `body` beyond endpoint, events and key, checked and as stored. */
function optionsOf(body: Static<typeof CreateBody> | Static<typeof UpdateBody>, ctx: AppContext) {
  const options: Updateable<SubscriptionTable> = checkDeliverySettings(body, ctx.config);
  if (body.filter !== undefined) {
    if (body.filter !== null) compileFilter(body.filter, FILTER_FIELDS);
    options.filter = body.filter === null ? null : JSON.stringify(body.filter);
  }
  if (body.headers !== undefined) {
    const headers = checkCustomHeaders(body.headers);
    options.headers = headers === null ? null : ctx.keyBox.seal(JSON.stringify(headers));
  }
  return options;
}

/**
 * After a switch to per-resource ordering has committed on PostgreSQL: orders the deliveries of
 * the writes that raced it (keyLateDeliveries). The switch stands whatever happens here, so a
 * failure is logged, never answered.
 */
async function orderLateWrites(ctx: AppContext, request: FastifyRequest, webhookId: string): Promise<void> {
  try {
    if (!(await keyLateDeliveries(ctx.db, webhookId))) {
      request.log.warn(
        { webhook: webhookId },
        "switching to per-resource ordering: writes in progress did not end in time; their deliveries may go unordered",
      );
    }
  } catch (error) {
    request.log.error(
      { err: error, webhook: webhookId },
      "switching to per-resource ordering: could not order the deliveries of writes in progress",
    );
  }
}

async function mustFind(db: Db, businessId: string, id: string): Promise<SubscriptionRow> {
  const row = await findSubscription(db, businessId, id);
  if (!row) throw notFound("Webhook");
  return row;
}

export function subscriptionRoutes(app: App, ctx: AppContext): void {
  const { db, keyBox } = ctx;
  const tags = ["webhooks"];

  /** Runs a write that may hit the one-endpoint-per-business index, answering 400 when it does. */
  async function guardDuplicate<T>(work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (error) {
      if (ctx.adapter.isUniqueViolation(error))
        throw invalidRequest("this endpoint is already registered for the business");
      throw error;
    }
  }

  app.post(
    BASE,
    {
      config: { scope: "webhooks:write", idempotent: true },
      schema: {
        tags,
        summary: "Register a webhook endpoint",
        body: CreateBody,
        response: {
          201: Type.Object({
            id: Type.String(),
            status: Type.Literal("success"),
            signing_key: Type.Optional({ ...SigningKey, description: "The generated key, shown this once." }),
            public_key: Type.Optional({ ...PublicKey, description: "An ed25519 webhook's public key." }),
          }),
          ...errorResponses(400, 401, 403, 409, 413, 415),
        },
      },
    },
    async (request, reply) => {
      const principal = principalOf(request);
      const body = request.body;
      const endpoint = checkEndpointInput(body.endpoint, body.protocol, ctx.urlPolicy);
      const eventNames = eventNamesOf(body);
      if (!eventNames) throw invalidRequest('body is missing "event_names"');
      const next = nextKeyOf(body, null, true);
      const signingKey = next.key ?? null;
      const options = optionsOf(body, ctx);
      return guardDuplicate(() =>
        runWrite(ctx, request, reply, async (trx, now) => {
          const id = newId("subscription", now);
          await insertSubscription(trx, {
            id,
            business_id: principal.businessId,
            endpoint: endpoint.endpoint,
            endpoint_key: endpoint.endpointKey,
            event_names: JSON.stringify(eventNames),
            protocol: endpoint.protocol,
            signing_key: signingKey === null ? null : keyBox.seal(signingKey),
            previous_signing_key: null,
            previous_key_expires_at: null,
            state_changed_at: now,
            client_id: principal.clientId,
            created_by: principal.clientId,
            updated_by: principal.clientId,
            created_at: now,
            updated_at: now,
            ordering: options.ordering ?? "none",
            max_in_flight: options.max_in_flight ?? null,
            rate_limit: options.rate_limit ?? null,
            timeout_ms: options.timeout_ms ?? null,
            retry_schedule: options.retry_schedule ?? null,
            filter: options.filter ?? null,
            headers: options.headers ?? null,
          });
          return {
            status: 201,
            body: { id, status: "success", ...next.shown },
            changed: [subscriptionsChanged(principal.businessId)],
          };
        }),
      );
    },
  );

  app.get(
    BASE,
    {
      config: { scope: "webhooks:read" },
      schema: {
        tags,
        summary: "List the business's webhooks",
        querystring: ListQuery,
        response: { 200: ListPage(Webhook), ...errorResponses(400, 401, 403) },
      },
    },
    async (request) => {
      const limit = request.query.limit ?? 50;
      const rows = await listSubscriptions(db, principalOf(request).businessId, {
        after: decodeCursor(request.query.cursor),
        limit: limit + 1,
      });
      return toPage(rows, limit, (row) => presentWebhook(row, keyBox));
    },
  );

  app.get(
    `${BASE}/:id`,
    {
      config: { scope: "webhooks:read" },
      schema: {
        tags,
        summary: "Get one webhook",
        params: IdParams,
        response: { 200: WebhookEnvelope, ...errorResponses(401, 403, 404) },
      },
    },
    async (request) => {
      const row = await mustFind(db, principalOf(request).businessId, request.params.id);
      return { data: presentWebhook(row, keyBox), msg: "success" as const };
    },
  );

  app.patch(
    `${BASE}/:id`,
    {
      config: { scope: "webhooks:write", idempotent: true },
      schema: {
        tags,
        summary: "Change a webhook's endpoint, events, signing key or delivery settings",
        description:
          "A new signing_key replaces the old one, which keeps signing alongside it for CAREHOOKS_KEY_OVERLAP unless expire_previous_key is true.",
        params: IdParams,
        body: UpdateBody,
        response: { 200: UpdateAnswer, ...errorResponses(400, 401, 403, 404, 413, 415) },
      },
    },
    async (request, reply) => {
      const principal = principalOf(request);
      const body = request.body ?? {};
      if (Object.keys(body).length === 0) {
        throw invalidRequest(
          "nothing to update: give endpoint, event_names, signing_key, generate_signing_key, expire_previous_key, ordering, max_in_flight, rate_limit, timeout, retry_schedule, filter or headers",
        );
      }
      const eventNames = eventNamesOf(body);
      const options = optionsOf(body, ctx);
      return guardDuplicate(() =>
        runWrite(ctx, request, reply, async (trx, now) => {
          const row = await mustFind(trx, principal.businessId, request.params.id);
          const change: Updateable<SubscriptionTable> = { updated_at: now, updated_by: principal.clientId };
          if (body.endpoint !== undefined || body.protocol !== undefined) {
            const endpoint = checkEndpointInput(body.endpoint ?? row.endpoint, body.protocol, ctx.urlPolicy);
            Object.assign(change, {
              endpoint: endpoint.endpoint,
              endpoint_key: endpoint.endpointKey,
              protocol: endpoint.protocol,
            });
          }
          if (eventNames) change.event_names = JSON.stringify(eventNames);
          Object.assign(change, options);
          const current = row.signing_key === null ? null : keyBox.open(row.signing_key);
          const { key: next, shown } = nextKeyOf(body, current, false);
          if (next !== undefined) {
            if (next !== current) {
              change.signing_key = next === null ? null : keyBox.seal(next);
              // Removing the key means unsigned from now on: the old key does not linger.
              const keep = next !== null && row.signing_key !== null;
              change.previous_signing_key = keep ? row.signing_key : null;
              change.previous_key_expires_at = keep ? now + ctx.config.keyOverlap : null;
            }
          }
          if (body.expire_previous_key === true) {
            change.previous_signing_key = null;
            change.previous_key_expires_at = null;
          }
          // Its open deliveries are keyed before the webhook's row is written: a worker's claim or
          // completion takes delivery rows and then the webhook's (the in-flight count's trigger),
          // and taking them in the same order leaves it no cycle to deadlock on.
          const ordered = change.ordering === "per_resource" && row.ordering !== "per_resource";
          if (ordered) await keyOpenDeliveries(trx, row.id);
          await updateSubscription(trx, principal.businessId, row.id, change);
          return {
            status: 200,
            body: {
              status: "webhook updated successfully",
              msg: "success",
              ...shown,
            },
            changed: [subscriptionsChanged(principal.businessId)],
            // On SQLite a create reads the ordering under the write lock, so none can race the switch.
            afterCommit:
              ordered && ctx.adapter.name === "postgres" ? () => orderLateWrites(ctx, request, row.id) : undefined,
          };
        }),
      );
    },
  );

  app.delete(
    `${BASE}/:id`,
    {
      config: { scope: "webhooks:write" },
      schema: {
        tags,
        summary: "Delete a webhook; its pending deliveries stop",
        params: IdParams,
        response: { 200: StatusMessage, ...errorResponses(401, 403, 404) },
      },
    },
    async (request) => {
      const principal = principalOf(request);
      const now = Date.now();
      const changed = [subscriptionsChanged(principal.businessId)];
      const deleted = await retryWrite(ctx, request, () =>
        db.transaction().execute(async (trx) => {
          const found = await updateSubscription(trx, principal.businessId, request.params.id, {
            deleted_at: now,
            updated_at: now,
            updated_by: principal.clientId,
          });
          if (found) await cancelPendingDeliveries(trx, request.params.id, "subscription deleted", now);
          if (found) await announceChanges(ctx.adapter, trx, changed);
          return found;
        }),
      );
      if (!deleted) throw notFound("Webhook");
      forgetChanges(ctx.adapter, changed);
      return { status: "webhook deleted successfully", msg: "success" as const };
    },
  );

  for (const action of ["enable", "disable"] as const) {
    app.post(
      `${BASE}/:id/${action}`,
      {
        config: { scope: "webhooks:write", idempotent: true },
        schema: {
          tags,
          summary:
            action === "enable" ? "Re-enable a webhook and reset its failure streak" : "Stop deliveries to a webhook",
          params: IdParams,
          body: EmptyBody,
          response: { 200: WebhookEnvelope, ...errorResponses(401, 403, 404) },
        },
      },
      async (request, reply) => {
        const principal = principalOf(request);
        return runWrite(ctx, request, reply, async (trx, now) => {
          const row = await mustFind(trx, principal.businessId, request.params.id);
          const change: Updateable<SubscriptionTable> =
            action === "enable"
              ? { state: "active", state_reason: null, failure_streak: 0, failing_since: null, probe_at: null }
              : { state: "disabled", state_reason: `disabled by ${principal.clientId}` };
          if (row.state !== change.state) change.state_changed_at = now;
          if (row.state !== change.state || action === "enable") {
            await updateSubscription(trx, principal.businessId, row.id, {
              ...change,
              updated_at: now,
              updated_by: principal.clientId,
            });
          }
          if (action === "disable") await cancelPendingDeliveries(trx, row.id, change.state_reason as string, now);
          const updated = await mustFind(trx, principal.businessId, row.id);
          return {
            status: 200,
            body: { data: presentWebhook(updated, keyBox), msg: "success" },
            changed: [subscriptionsChanged(principal.businessId)],
          };
        });
      },
    );
  }

  app.get(
    "/notification/v1/connect/webhook/source-ips",
    {
      schema: {
        tags,
        summary: "The addresses deliveries come from, for receivers' allow-lists",
        response: { 200: Type.Object({ data: Type.Array(Type.String()), msg: Type.Literal("success") }) },
      },
    },
    async () => ({ data: ctx.config.sourceIps, msg: "success" as const }),
  );
}
