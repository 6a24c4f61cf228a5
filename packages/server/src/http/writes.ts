/**
 * Every POST and PATCH that changes data runs through `runWrite`: one
 * transaction that holds the change, its outbox rows and, with an
 * `Idempotency-Key`, the key and the stored answer. A retry with the same key
 * and request replays the answer; a different request is a 409. A
 * transaction PostgreSQL rolls back to break a deadlock is run again from its
 * start (`retryWrite`).
 *
 * A create that reads nothing first runs through `runIngest`: without an
 * Idempotency-Key, its rows, event and deliveries are written with the other
 * creates of the same turn (store/outbox-batch.ts: on PostgreSQL one
 * statement, one round trip; on SQLite one transaction); with one it is a
 * `runWrite`.
 *
 * Login, refresh, logout and the two portal-session calls do not: they take
 * no Idempotency-Key, because their answers hold secrets that are never
 * stored (logout answers nothing).
 */
import type { FastifyReply, FastifyRequest } from "fastify";
import { ApiError, invalidRequest } from "../domain/errors.js";
import type { EventOrigin } from "../domain/event-payloads.js";
import { newTimedId } from "../domain/ids.js";
import { sha256 } from "../domain/secrets.js";
import { retryAborted } from "../store/aborts.js";
import { announceChanges, forgetChanges } from "../store/changes.js";
import { claimIdempotencyKey, storeIdempotentAnswer } from "../store/idempotency-keys.js";
import type { Db } from "../store/open.js";
import { type RecordInsert, recordEvent } from "../store/outbox.js";
import type { SubscriberLookup } from "../store/outbox-rows.js";
import { subscribersOf } from "../store/subscriptions.js";
import { type AppContext, type Principal, principalOf } from "./context.js";

export interface WriteAnswer {
  readonly status: number;
  readonly body: unknown;
  /** Deliveries the write created or re-queued, when it recorded an event: dispatchers and streams are woken after the commit. */
  readonly deliveries?: number;
  /** The name of the event the write recorded, counted on /metrics once it is committed. */
  readonly event?: string;
  /** What cached rows the write changed (store/changes.ts): announced in its transaction, forgotten here after it. */
  readonly changed?: readonly string[];
  /** Work that must follow the commit and come before the answer (not on a replay). */
  readonly afterCommit?: (() => Promise<void>) | undefined;
}

interface Outcome {
  readonly replayed: boolean;
  readonly status: number;
  readonly text: string;
  /** True when the write recorded an event. */
  readonly events: boolean;
  readonly event: string | undefined;
  readonly changed?: readonly string[] | undefined;
  readonly afterCommit?: (() => Promise<void>) | undefined;
}

/** What `recordChange` wrote: an answer spreads it in. */
export interface RecordedChange {
  readonly event: string;
  readonly deliveries: number;
}

const KEY_PATTERN = /^[\x21-\x7e]{1,255}$/;

/** The Idempotency-Key header, as the OpenAPI document shows it on every route with `config.idempotent`. */
export const IDEMPOTENCY_KEY_HEADERS = {
  type: "object",
  properties: {
    "idempotency-key": {
      type: "string",
      pattern: KEY_PATTERN.source,
      description:
        "1 to 255 printable ASCII characters, scoped to the client and kept CAREHOOKS_IDEMPOTENCY_TTL (24 h): a retry of the same request replays the first answer, with the header idempotent-replayed: true; another request with the same key is a 409 IDEMPOTENCY_MISMATCH. Failed requests are not kept.",
    },
  },
} as const;

export function idempotencyKeyOf(request: FastifyRequest): string | undefined {
  if (request.routeOptions.config.idempotent !== true) {
    throw new Error(
      `${request.method} ${request.routeOptions.url} writes without config.idempotent: say so on the route`,
    );
  }
  const key = request.headers["idempotency-key"];
  if (key === undefined) return undefined;
  if (typeof key !== "string" || !KEY_PATTERN.test(key)) {
    throw invalidRequest("Idempotency-Key must be 1 to 255 printable ASCII characters");
  }
  return key;
}

export async function runWrite(
  ctx: AppContext,
  request: FastifyRequest,
  reply: FastifyReply,
  work: (trx: Db, now: number) => Promise<WriteAnswer>,
): Promise<FastifyReply> {
  const key = idempotencyKeyOf(request);
  const clientId = principalOf(request).clientId;
  const fingerprint = key && sha256(`${request.method} ${request.url}\n${JSON.stringify(request.body ?? null)}`);

  const outcome: Outcome = await retryWrite(ctx, request, () =>
    ctx.db.transaction().execute(async (trx) => {
      const now = Date.now();
      if (key && fingerprint) {
        const claim = await claimIdempotencyKey(trx, {
          clientId,
          key,
          fingerprint,
          now,
          ttlMs: ctx.config.idempotencyTtl,
        });
        if (claim.kind === "existing") {
          if (claim.row.fingerprint !== fingerprint) {
            throw new ApiError("IDEMPOTENCY_MISMATCH", "this Idempotency-Key was used with a different request");
          }
          return {
            replayed: true,
            status: claim.row.status_code ?? 500,
            text: claim.row.response_body ?? "null",
            events: false,
            event: undefined,
          };
        }
      }
      const answer = await work(trx, now);
      const text = JSON.stringify(answer.body);
      if (key) await storeIdempotentAnswer(trx, clientId, key, { status: answer.status, body: text });
      if (answer.changed) await announceChanges(ctx.adapter, trx, answer.changed);
      return {
        replayed: false,
        status: answer.status,
        text,
        events: answer.deliveries !== undefined,
        event: answer.event,
        changed: answer.changed,
        afterCommit: answer.afterCommit,
      };
    }),
  );
  if (outcome.changed) forgetChanges(ctx.adapter, outcome.changed);
  await outcome.afterCommit?.();
  return respond(ctx, reply, outcome);
}

/**
 * Runs a write's transaction again when the database rolled it back to break
 * a deadlock (store/aborts.ts), counting each re-run on /metrics; past the
 * re-runs the abort is answered 503.
 */
export function retryWrite<T>(ctx: AppContext, request: FastifyRequest, transaction: () => Promise<T>): Promise<T> {
  return retryAborted(ctx.adapter, transaction, (error) => {
    ctx.metrics.writeRetries.inc();
    request.log.warn({ err: error }, "the database rolled this write back to break a deadlock; running it again");
  });
}

/** After the commit: wakes dispatchers and streams, counts the event, and answers. */
function respond(ctx: AppContext, reply: FastifyReply, outcome: Outcome): FastifyReply {
  if (!outcome.replayed && outcome.events) ctx.wakeup.notify();
  if (outcome.event) ctx.metrics.eventsRecorded.inc({ name: outcome.event });
  if (outcome.replayed) reply.header("idempotent-replayed", "true");
  return reply.status(outcome.status).type("application/json; charset=utf-8").send(outcome.text);
}

/** A change as an event: what `recordChange` writes. */
export interface Change {
  readonly name: string;
  readonly resourceType: string;
  readonly resourceId: string;
  readonly payload: (origin: EventOrigin) => string;
  /** The change's own rows, written with the event (`runIngest`); a `runWrite` may instead have written them before. */
  readonly records?: readonly RecordInsert[];
}

/** What a create writes and answers, built from the time it is written at. */
export interface PlannedCreate {
  readonly status: number;
  readonly body: unknown;
  readonly change: Change;
}

export async function runIngest(
  ctx: AppContext,
  request: FastifyRequest,
  reply: FastifyReply,
  plan: (now: number) => PlannedCreate,
): Promise<FastifyReply> {
  if (idempotencyKeyOf(request) !== undefined) {
    return runWrite(ctx, request, reply, async (trx, now) => {
      const planned = plan(now);
      const change = await recordChange(ctx, trx, request, principalOf(request), planned.change, now);
      return { status: planned.status, body: planned.body, ...change };
    });
  }
  const now = Date.now();
  const planned = plan(now);
  const change = await recordChange(ctx, ctx.db, request, principalOf(request), planned.change, now);
  return respond(ctx, reply, {
    replayed: false,
    status: planned.status,
    text: JSON.stringify(planned.body),
    events: true,
    event: change.event,
  });
}

/**
 * Writes the event a change caused, with the change's records if it names
 * any, in `db`'s transaction (or, given the database itself, atomically on
 * its own: store/outbox.ts): the request id becomes its transaction_id and
 * the caller its client_id. Returns its name and the number of deliveries it
 * queued.
 */
export async function recordChange(
  ctx: AppContext,
  db: Db,
  request: { id: string },
  principal: Principal,
  change: Change,
  now: number,
): Promise<RecordedChange> {
  // The event's time is its id's, which its scans by time rely on (store/events.ts).
  const { id: eventId, at } = newTimedId("event", now);
  const payload = change.payload({
    eventId,
    at,
    transactionId: request.id,
    clientId: principal.clientId,
    businessId: principal.businessId,
  });
  const deliveries = await recordEvent(ctx.adapter, db, {
    records: change.records ?? [],
    event: {
      id: eventId,
      business_id: principal.businessId,
      name: change.name,
      resource_type: change.resourceType,
      resource_id: change.resourceId,
      payload,
      created_at: at,
    },
    // Looked up where the create is written: on SQLite, inside its transaction.
    subscriptionIds: subscriberLookup(ctx, principal.businessId, change.name, payload),
  });
  return { event: change.name, deliveries };
}

/** The webhooks of `businessId` that take the event: from the per-process cache, or read through a transaction. */
function subscriberLookup(ctx: AppContext, businessId: string, name: string, payload: string): SubscriberLookup {
  const parsed = () => JSON.parse(payload);
  const cache = ctx.caches.subscriptions;
  return Object.assign(async (reader: Db) => subscribersOf(await cache.get(reader, businessId), name, parsed), {
    cached: () => {
      const hit = cache.peek(businessId);
      return hit && subscribersOf(hit.value, name, parsed);
    },
  });
}
