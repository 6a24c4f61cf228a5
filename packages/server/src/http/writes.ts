/**
 * Every POST and PATCH that changes data runs through `runWrite`: one
 * transaction that holds the change, its outbox rows and, with an
 * `Idempotency-Key`, the key and the stored answer. A retry with the same key
 * and request replays the answer; a different request is a 409.
 */
import type { FastifyReply, FastifyRequest } from "fastify";
import { ApiError, invalidRequest } from "../domain/errors.js";
import type { EventOrigin } from "../domain/event-payloads.js";
import { newId } from "../domain/ids.js";
import { sha256 } from "../domain/secrets.js";
import { claimIdempotencyKey, storeIdempotentAnswer } from "../store/idempotency-keys.js";
import type { Db } from "../store/open.js";
import { recordEvent } from "../store/outbox.js";
import { type AppContext, type Principal, principalOf } from "./context.js";

export interface WriteAnswer {
  readonly status: number;
  readonly body: unknown;
  /** Deliveries the write created or re-queued, when it recorded an event: dispatchers and streams are woken after the commit. */
  readonly deliveries?: number;
  /** The name of the event the write recorded, counted on /metrics once it is committed. */
  readonly event?: string;
}

/** What `recordChange` wrote: an answer spreads it in. */
export interface RecordedChange {
  readonly event: string;
  readonly deliveries: number;
}

const KEY_PATTERN = /^[\x21-\x7e]{1,255}$/;

export function idempotencyKeyOf(request: FastifyRequest): string | undefined {
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

  const outcome = await ctx.db.transaction().execute(async (trx) => {
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
    return {
      replayed: false,
      status: answer.status,
      text,
      events: answer.deliveries !== undefined,
      event: answer.event,
    };
  });
  if (!outcome.replayed && outcome.events) ctx.wakeup.notify();
  if (outcome.event) ctx.metrics.eventsRecorded.inc({ name: outcome.event });

  if (outcome.replayed) reply.header("idempotent-replayed", "true");
  return reply.status(outcome.status).type("application/json; charset=utf-8").send(outcome.text);
}

/**
 * Writes the event a change caused, in the change's transaction: the request
 * id becomes its transaction_id and the caller its client_id. Returns its
 * name and the number of deliveries it queued.
 */
export async function recordChange(
  trx: Db,
  request: { id: string },
  principal: Principal,
  change: {
    readonly name: string;
    readonly resourceType: string;
    readonly resourceId: string;
    readonly now: number;
    readonly payload: (origin: EventOrigin) => string;
  },
): Promise<RecordedChange> {
  const eventId = newId("event", change.now);
  const deliveries = await recordEvent(trx, {
    id: eventId,
    business_id: principal.businessId,
    name: change.name,
    resource_type: change.resourceType,
    resource_id: change.resourceId,
    payload: change.payload({
      eventId,
      at: change.now,
      transactionId: request.id,
      clientId: principal.clientId,
      businessId: principal.businessId,
    }),
    created_at: change.now,
  });
  return { event: change.name, deliveries };
}
