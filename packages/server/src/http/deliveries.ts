/** The delivery log: deliveries and their attempts, resend, recover, test events, events and tasks. */
import { type Static, Type } from "@sinclair/typebox";
import { runRecoverTask } from "../delivery/recover.js";
import { conflict, invalidRequest, notFound } from "../domain/errors.js";
import { EVENT_CATALOG, EVENT_NAMES, type EventName } from "../domain/event-catalog.js";
import { newId, newTimedId } from "../domain/ids.js";
import { decodeRequestMeta, keyIdOf, rebuiltHeaders } from "../domain/request-headers.js";
import { isoTime, isoTimeOrNull, parseTimeFilter } from "../domain/time.js";
import {
  type AttemptRow,
  countFailed,
  type DeliveryRow,
  findDelivery,
  listAttempts,
  listDeliveries,
  resendDelivery,
} from "../store/deliveries.js";
import { type EventRow, findEvent, listEvents } from "../store/events.js";
import type { Db } from "../store/open.js";
import { resourceKeyOf } from "../store/resource-key.js";
import { findSubscription } from "../store/subscriptions.js";
import { findTask, insertTask, type TaskRow } from "../store/tasks.js";
import { type App, type AppContext, principalOf } from "./context.js";
import { decodeCursor, toPage } from "./pagination.js";
import { EmptyBody, errorResponses, IdParams, ListPage, ListQuery } from "./schemas.js";
import { runWrite } from "./writes.js";

const BASE = "/notification/v1/connect/webhook";
const Time = Type.String({ format: "date-time" });
const Nullable = <T extends import("@sinclair/typebox").TSchema>(schema: T) => Type.Union([schema, Type.Null()]);
/** Lists read oldest first, as a log does; a UI showing the latest asks for `desc`. The cursor pages either way. */
const Order = Type.Optional(
  Type.Union([Type.Literal("asc"), Type.Literal("desc")], {
    default: "asc",
    description: "`asc` (default): oldest first; `desc`: newest first",
  }),
);
const DeliveryStatus = Type.Union(
  ["pending", "in_flight", "succeeded", "failed", "cancelled"].map((status) => Type.Literal(status)),
);

export const Delivery = Type.Object(
  {
    id: Type.String(),
    event_id: Type.String(),
    subscription_id: Type.String(),
    event_name: Type.String(),
    status: DeliveryStatus,
    attempts: Type.Integer(),
    next_attempt_at: Nullable(Time),
    last_status_code: Nullable(Type.Integer()),
    last_error: Nullable(Type.String()),
    created_at: Time,
    updated_at: Time,
  },
  { title: "Delivery" },
);
export const Attempt = Type.Object(
  {
    id: Type.String(),
    n: Type.Integer(),
    started_at: Time,
    duration_ms: Type.Integer(),
    request_headers: Type.Record(Type.String(), Type.String(), {
      description:
        "Every header the request was sent with, the webhook's own header values masked. Rebuilt when read from what the attempt stored: a signature made with a key the webhook no longer holds reads `(key <id> no longer held)`",
    }),
    response_status: Nullable(Type.Integer()),
    response_body: Nullable(
      Type.String({
        description: "The first 4 KiB of the response; empty for a 2xx unless CAREHOOKS_KEEP_SUCCESS_BODY is set",
      }),
    ),
    error: Nullable(Type.String()),
  },
  { title: "Attempt" },
);
export const Task = Type.Object(
  {
    id: Type.String(),
    kind: Type.String(),
    state: Type.Union(["queued", "running", "succeeded", "failed"].map((state) => Type.Literal(state))),
    total: Type.Integer(),
    done: Type.Integer(),
    error: Nullable(Type.String()),
    created_at: Time,
    finished_at: Nullable(Time),
  },
  { title: "Task" },
);
export const Event = Type.Object(
  {
    id: Type.String(),
    event_name: Type.String(),
    resource_type: Type.String(),
    resource_id: Type.String(),
    payload: Type.Unknown({ description: "The payload exactly as delivered" }),
    created_at: Time,
  },
  { title: "Event" },
);

export function presentDelivery(row: DeliveryRow): Static<typeof Delivery> {
  return {
    id: row.id,
    event_id: row.event_id,
    subscription_id: row.subscription_id,
    event_name: row.event_name,
    status: row.status,
    attempts: row.attempts,
    next_attempt_at: isoTimeOrNull(row.next_attempt_at),
    last_status_code: row.last_status_code,
    last_error: row.last_error,
    created_at: isoTime(row.created_at),
    updated_at: isoTime(row.updated_at),
  };
}

/** Rebuilds an attempt's request headers from its RequestMeta (domain/request-headers.ts). */
type Rebuild = (meta: string, startedAt: number) => Record<string, string>;

/**
 * Rebuilds attempts' headers from the delivery's event and the keys its
 * webhook holds now (a deleted webhook holds none); read only when an attempt
 * needs them.
 */
async function rebuilderOf(ctx: AppContext, delivery: DeliveryRow, attempts: readonly AttemptRow[]): Promise<Rebuild> {
  if (attempts.every((attempt) => attempt.request_meta === null)) return () => ({});
  const businessId = delivery.business_id;
  const [event, webhook] = await Promise.all([
    findEvent(ctx.db, businessId, delivery.event_id),
    findSubscription(ctx.db, businessId, delivery.subscription_id),
  ]);
  const held = new Map<string, string>();
  for (const sealed of webhook ? [webhook.signing_key, webhook.previous_signing_key] : []) {
    const key = sealed === null ? undefined : openedOrUndefined(ctx, sealed);
    if (key !== undefined) held.set(keyIdOf(key, ctx.keyBox), key);
  }
  const body = event?.payload;
  return (meta, startedAt) =>
    rebuiltHeaders(decodeRequestMeta(meta), { eventId: delivery.event_id, startedAt, body }, held);
}

/** A sealed key, opened; undefined when it cannot be (another master key, a damaged row): not held. */
function openedOrUndefined(ctx: AppContext, sealed: string): string | undefined {
  try {
    return ctx.keyBox.open(sealed);
  } catch {
    return undefined;
  }
}

function presentAttempt(row: AttemptRow, rebuild: Rebuild): Static<typeof Attempt> {
  return {
    id: row.id,
    n: row.n,
    started_at: new Date(row.started_at).toISOString(),
    duration_ms: row.duration_ms,
    request_headers:
      row.request_meta === null
        ? (JSON.parse(row.request_headers) as Record<string, string>)
        : rebuild(row.request_meta, row.started_at),
    response_status: row.response_status,
    response_body: row.response_body,
    error: row.error,
  };
}

export function presentTask(row: TaskRow): Static<typeof Task> {
  return {
    id: row.id,
    kind: row.kind,
    state: row.state,
    total: row.total,
    done: row.done,
    error: row.error,
    created_at: isoTime(row.created_at),
    finished_at: isoTimeOrNull(row.finished_at),
  };
}

export function presentEvent(row: EventRow): Static<typeof Event> {
  return {
    id: row.id,
    event_name: row.name,
    resource_type: row.resource_type,
    resource_id: row.resource_id,
    payload: JSON.parse(row.payload),
    created_at: isoTime(row.created_at),
  };
}

function timeFilter(name: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const ms = parseTimeFilter(text);
  if (ms === undefined) throw invalidRequest(`${name} must be an ISO-8601 time or Unix seconds`);
  return ms;
}

async function liveSubscription(db: Db, businessId: string, id: string) {
  const subscription = await findSubscription(db, businessId, id);
  if (!subscription) throw notFound("Webhook");
  return subscription;
}

export function deliveryRoutes(app: App, ctx: AppContext): void {
  const tags = ["deliveries"];
  const read = { scope: "webhooks:read" as const };
  const write = { scope: "webhooks:write" as const, idempotent: true as const };

  app.get(
    `${BASE}/subscriptions/:id/deliveries`,
    {
      config: read,
      schema: {
        tags,
        summary: "A webhook's deliveries, oldest first (or newest first with order=desc)",
        params: IdParams,
        querystring: Type.Composite(
          [
            ListQuery,
            Type.Object({
              status: Type.Optional(DeliveryStatus),
              event_name: Type.Optional(Type.String({ maxLength: 100 })),
              since: Type.Optional(Type.String({ maxLength: 40 })),
              until: Type.Optional(Type.String({ maxLength: 40 })),
              order: Order,
            }),
          ],
          { additionalProperties: false },
        ),
        response: { 200: ListPage(Delivery), ...errorResponses(400, 401, 403, 404) },
      },
    },
    async (request) => {
      const { businessId } = principalOf(request);
      await liveSubscription(ctx.db, businessId, request.params.id);
      const { limit = 50, cursor, since, until, status, event_name, order } = request.query;
      const rows = await listDeliveries(
        ctx.db,
        businessId,
        request.params.id,
        {
          status: status as DeliveryRow["status"] | undefined,
          event_name,
          since: timeFilter("since", since),
          until: timeFilter("until", until),
        },
        { after: decodeCursor(cursor), limit: limit + 1, newestFirst: order === "desc" },
      );
      return toPage(rows, limit, presentDelivery);
    },
  );

  app.get(
    `${BASE}/deliveries/:id`,
    {
      config: read,
      schema: {
        tags,
        summary: "One delivery with every attempt (`attempts` is the list here, not the count)",
        params: IdParams,
        response: {
          200: Type.Object({
            data: Type.Composite([Type.Omit(Delivery, ["attempts"]), Type.Object({ attempts: Type.Array(Attempt) })]),
            msg: Type.Literal("success"),
          }),
          ...errorResponses(401, 403, 404),
        },
      },
    },
    async (request) => {
      const row = await findDelivery(ctx.db, principalOf(request).businessId, request.params.id);
      if (!row) throw notFound("delivery");
      const attempts = await listAttempts(ctx.db, row.id);
      const rebuild = await rebuilderOf(ctx, row, attempts);
      return {
        data: { ...presentDelivery(row), attempts: attempts.map((attempt) => presentAttempt(attempt, rebuild)) },
        msg: "success" as const,
      };
    },
  );

  app.post(
    `${BASE}/deliveries/:id/resend`,
    {
      config: write,
      schema: {
        tags,
        summary: "Send a finished delivery again (a new round of the retry schedule)",
        params: IdParams,
        body: EmptyBody,
        response: { 202: Type.Object({ data: Delivery }), ...errorResponses(401, 403, 404, 409) },
      },
    },
    async (request, reply) => {
      const { businessId } = principalOf(request);
      return runWrite(ctx, request, reply, async (trx, now) => {
        const row = await findDelivery(trx, businessId, request.params.id);
        if (!row) throw notFound("delivery");
        const subscription = await findSubscription(trx, businessId, row.subscription_id);
        if (!subscription) throw conflict("the webhook of this delivery was deleted");
        if (subscription.state === "disabled") throw conflict("the webhook is disabled: enable it first");
        if (!(await resendDelivery(trx, businessId, row.id, now))) {
          throw conflict(`the delivery is ${row.status}: only succeeded, failed or cancelled deliveries can be resent`);
        }
        const updated = (await findDelivery(trx, businessId, row.id)) as DeliveryRow;
        return { status: 202, body: { data: presentDelivery(updated) }, deliveries: 1 };
      });
    },
  );

  app.post(
    `${BASE}/subscriptions/:id/recover`,
    {
      config: write,
      schema: {
        tags,
        summary: "Re-queue a webhook's failed and cancelled deliveries created in [since, until)",
        params: IdParams,
        body: Type.Object(
          {
            since: Type.Union([Type.String({ maxLength: 40 }), Type.Integer()]),
            until: Type.Optional(Type.Union([Type.String({ maxLength: 40 }), Type.Integer()])),
          },
          { additionalProperties: false },
        ),
        response: { 202: Type.Object({ data: Task }), ...errorResponses(400, 401, 403, 404, 409) },
      },
    },
    async (request, reply) => {
      const { businessId } = principalOf(request);
      const since = timeFilter("since", String(request.body.since));
      const until = request.body.until === undefined ? Date.now() : timeFilter("until", String(request.body.until));
      if (since === undefined || until === undefined || until <= since)
        throw invalidRequest("until must be after since");
      return runWrite(ctx, request, reply, async (trx, now) => {
        const subscription = await liveSubscription(trx, businessId, request.params.id);
        if (subscription.state === "disabled") throw conflict("the webhook is disabled: enable it first");
        const task: TaskRow = {
          id: newId("task", now),
          business_id: businessId,
          subscription_id: subscription.id,
          kind: "recover",
          state: "queued",
          params: JSON.stringify({ since, until }),
          total: await countFailed(trx, subscription.id, { since, until }),
          done: 0,
          error: null,
          created_at: now,
          updated_at: now,
          finished_at: null,
        };
        await insertTask(trx, task);
        return {
          status: 202,
          body: { data: presentTask(task) },
          // Only once committed (the write may be run again), and not on a replay.
          afterCommit: async () => void runRecoverTask(ctx.db, ctx.wakeup, request.log, task),
        };
      });
    },
  );

  app.post(
    `${BASE}/subscriptions/:id/test`,
    {
      config: write,
      schema: {
        tags,
        summary: "Send a sample event of the given type to this webhook only",
        params: IdParams,
        body: Type.Object(
          { event_name: Type.Optional(Type.String({ enum: [...EVENT_NAMES] })) },
          { additionalProperties: false },
        ),
        response: { 202: Type.Object({ data: Delivery }), ...errorResponses(400, 401, 403, 404, 409) },
      },
    },
    async (request, reply) => {
      const principal = principalOf(request);
      return runWrite(ctx, request, reply, async (trx, now) => {
        const subscription = await liveSubscription(trx, principal.businessId, request.params.id);
        if (subscription.state === "disabled") throw conflict("the webhook is disabled: enable it first");
        const subscribed = JSON.parse(subscription.event_names) as EventName[];
        const name = (request.body.event_name ?? subscribed[0]) as EventName;
        const entry = EVENT_CATALOG.find((candidate) => candidate.name === name);
        if (!entry) throw invalidRequest("unknown event_name");
        // The event's time is its id's, which its scans by time rely on (store/events.ts).
        const { id: eventId, at } = newTimedId("event", now);
        const seconds = Math.floor(at / 1000);
        const payload = JSON.stringify({
          ...entry.example,
          event_id: eventId,
          event_time: seconds,
          timestamp: seconds,
          transaction_id: request.id,
          client_id: principal.clientId,
          business_id: principal.businessId,
          // Its ids are the catalog's examples: a receiver must not go and fetch them.
          test: true,
        });
        const resourceId = Object.values(entry.example.data)[0] as string;
        await trx
          .insertInto("event")
          .values({
            id: eventId,
            business_id: principal.businessId,
            name,
            resource_type: "test",
            resource_id: resourceId,
            payload,
            created_at: at,
          })
          .execute();
        const delivery = {
          id: newId("delivery", at),
          event_id: eventId,
          subscription_id: subscription.id,
          business_id: principal.businessId,
          event_name: name,
          status: "pending" as const,
          attempts: 0,
          retries_from: 0,
          next_attempt_at: at,
          lease_token: null,
          lease_expires_at: null,
          last_status_code: null,
          last_error: null,
          created_at: at,
          updated_at: at,
          resource_key:
            subscription.ordering === "per_resource"
              ? resourceKeyOf({ resource_type: "test", resource_id: resourceId })
              : null,
        };
        await trx.insertInto("delivery").values(delivery).execute();
        return { status: 202, body: { data: presentDelivery(delivery) }, deliveries: 1 };
      });
    },
  );

  app.get(
    `${BASE}/events`,
    {
      config: read,
      schema: {
        tags,
        summary: "The business's events, oldest first (or newest first with order=desc), with their payloads",
        querystring: Type.Composite(
          [
            ListQuery,
            Type.Object({
              event_name: Type.Optional(Type.String({ maxLength: 100 })),
              resource_id: Type.Optional(Type.String({ maxLength: 128 })),
              since: Type.Optional(Type.String({ maxLength: 40 })),
              until: Type.Optional(Type.String({ maxLength: 40 })),
              order: Order,
            }),
          ],
          { additionalProperties: false },
        ),
        response: { 200: ListPage(Event), ...errorResponses(400, 401, 403) },
      },
    },
    async (request) => {
      const { limit = 50, cursor, since, until, event_name, resource_id, order } = request.query;
      const rows = await listEvents(
        ctx.db,
        principalOf(request).businessId,
        { event_name, resource_id, since: timeFilter("since", since), until: timeFilter("until", until) },
        { after: decodeCursor(cursor), limit: limit + 1, newestFirst: order === "desc" },
      );
      return toPage(rows, limit, presentEvent);
    },
  );

  app.get(
    `${BASE}/events/:id`,
    {
      config: read,
      schema: {
        tags,
        summary: "One event",
        params: IdParams,
        response: { 200: Type.Object({ data: Event, msg: Type.Literal("success") }), ...errorResponses(401, 403, 404) },
      },
    },
    async (request) => {
      const row = await findEvent(ctx.db, principalOf(request).businessId, request.params.id);
      if (!row) throw notFound("event");
      return { data: presentEvent(row), msg: "success" as const };
    },
  );

  app.get(
    `${BASE}/tasks/:id`,
    {
      config: read,
      schema: {
        tags,
        summary: "Progress of a recover task",
        params: IdParams,
        response: { 200: Type.Object({ data: Task }), ...errorResponses(401, 403, 404) },
      },
    },
    async (request) => {
      const row = await findTask(ctx.db, principalOf(request).businessId, request.params.id);
      if (!row) throw notFound("task");
      return { data: presentTask(row) };
    },
  );
}
