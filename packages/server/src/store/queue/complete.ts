/**
 * Records finished attempts: one statement (PostgreSQL) or one transaction
 * (SQLite) per batch, whatever mix of outcomes it holds. Attempts are
 * inserted in one go; deliveries are updated from arrays, each only while
 * its lease token still matches: a worker whose lease was taken over records
 * its attempt and changes nothing else (fencing). A retry for a subscription
 * deleted or disabled meanwhile is cancelled instead of queued again.
 *
 * Writing a batch twice is harmless (a flush retried after a lost answer):
 * attempts are keyed by their id, and the second update finds no lease.
 */
import type { DeliveryOutcome } from "../../domain/delivery-outcome.js";
import type { DialectAdapter } from "../dialect/adapter.js";
import type { AttemptTable, DeliveryStatus } from "../schema.js";
import { DELIVERY_BY_ID, rowsOf, statementRows } from "./raw.js";

export interface Completion {
  readonly deliveryId: string;
  readonly subscriptionId: string;
  readonly leaseToken: string;
  readonly attempt: AttemptTable;
  readonly outcome: DeliveryOutcome;
  /**
   * The worker's clock when the outcome was decided. A retry's time is moved
   * onto the database's clock by the same offset: claims compare due times
   * with the database's clock, whatever the worker's clock says.
   */
  readonly decidedAt: number;
  readonly statusCode: number | null;
  readonly error: string | null;
}

export interface CompletionResult {
  /** Deliveries whose lease still held: their outcome was written. The others are fenced. */
  readonly moved: ReadonlySet<string>;
  /** The database's clock that the completions were recorded at. */
  readonly now: number;
}

const STOPPED_ERROR = "subscription deleted or disabled";

function statusAfter(outcome: DeliveryOutcome): DeliveryStatus {
  switch (outcome.kind) {
    case "succeeded":
      return "succeeded";
    case "retry":
      return "pending";
    case "failed":
    case "gone":
      return "failed";
  }
}

/** The columns of one batch, as parallel arrays. */
function columnsOf(completions: readonly Completion[]) {
  return {
    ids: completions.map((c) => c.deliveryId),
    tokens: completions.map((c) => c.leaseToken),
    statuses: completions.map((c) => statusAfter(c.outcome)),
    attempts: completions.map((c) => c.attempt.n),
    delays: completions.map((c) => (c.outcome.kind === "retry" ? Math.max(0, c.outcome.at - c.decidedAt) : 0)),
    codes: completions.map((c) => c.statusCode),
    errors: completions.map((c) => (c.outcome.kind === "succeeded" ? null : c.error)),
    attemptIds: completions.map((c) => c.attempt.id),
    startedAt: completions.map((c) => c.attempt.started_at),
    durations: completions.map((c) => c.attempt.duration_ms),
    headers: completions.map((c) => c.attempt.request_headers),
    metas: completions.map((c) => c.attempt.request_meta),
    bodies: completions.map((c) => c.attempt.response_body),
    attemptErrors: completions.map((c) => c.attempt.error),
  };
}

/** The new status, next attempt and error of a delivery: `c` is the completion, `s` its subscription. */
const MOVE = (now: string) => `
  status = CASE WHEN c.status = 'pending' AND (s.deleted_at IS NOT NULL OR s.state = 'disabled') THEN 'cancelled' ELSE c.status END,
  attempts = c.attempts,
  next_attempt_at = CASE WHEN c.status = 'pending' AND s.deleted_at IS NULL AND s.state <> 'disabled' THEN ${now} + c.delay END,
  last_status_code = c.code,
  last_error = CASE WHEN c.status = 'pending' AND (s.deleted_at IS NOT NULL OR s.state = 'disabled') THEN '${STOPPED_ERROR}' ELSE c.error END,
  lease_token = NULL, lease_expires_at = NULL, worker_id = NULL, updated_at = ${now}`;

const POSTGRES_COMPLETE = `
WITH clock AS MATERIALIZED (SELECT (extract(epoch from statement_timestamp()) * 1000)::bigint AS now),
c AS (
  SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::int[], $5::bigint[], $6::int[], $7::text[])
    AS c(id, token, status, attempts, delay, code, error)
),
moved AS (
  UPDATE delivery d SET ${MOVE("clock.now")}
  FROM c, subscription s, clock
  WHERE d.id = c.id AND d.lease_token = c.token AND d.status = 'in_flight' AND s.id = d.subscription_id
  RETURNING d.id
),
recorded AS (
  INSERT INTO attempt (id, delivery_id, n, started_at, duration_ms, request_headers, request_meta, response_status, response_body, error)
  SELECT * FROM unnest($8::text[], $1::text[], $4::int[], $9::bigint[], $10::int[], $11::text[], $14::text[], $6::int[], $12::text[], $13::text[])
  ON CONFLICT (id) DO NOTHING
)
SELECT clock.now, moved.id FROM clock LEFT JOIN moved ON true`;

/**
 * SQLite: @changes holds JSON rows [id, token, status, attempts, delay, code, error].
 *
 * INDEXED BY the primary key keeps the array driving the loop, each delivery found by
 * its id, whatever the statistics say. Statistics taken while nothing was in flight
 * (an operator's `ANALYZE` or `PRAGMA optimize`) rate the partial indexes of in-flight
 * deliveries as empty, and SQLite scanned every delivery in flight against every row of
 * the array: in-flight × batch rows per statement (a unary `+` on status instead sent it
 * through all of a subscription's deliveries). Every JSON list joined to deliveries (the
 * claim's credit, releases) is pinned the same way; test/sqlite-plans.test.ts checks them.
 */
const SQLITE_COMPLETE = `
UPDATE delivery INDEXED BY ${DELIVERY_BY_ID} SET ${MOVE("@now")}
FROM (
  SELECT value ->> 0 AS id, value ->> 1 AS token, value ->> 2 AS status, value ->> 3 AS attempts,
    value ->> 4 AS delay, value ->> 5 AS code, value ->> 6 AS error
  FROM json_each(@changes)
) AS c, subscription s
WHERE delivery.id = c.id AND delivery.lease_token = c.token AND delivery.status = 'in_flight'
  AND s.id = delivery.subscription_id
RETURNING delivery.id`;

/** SQLite: @attempts holds JSON rows in column order. */
const SQLITE_ATTEMPTS = `
INSERT INTO attempt (id, delivery_id, n, started_at, duration_ms, request_headers, request_meta, response_status, response_body, error)
SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5, value ->> 6, value ->> 7, value ->> 8, value ->> 9
FROM json_each(@attempts) WHERE true
ON CONFLICT (id) DO NOTHING`;

function zip(columns: readonly (readonly unknown[])[]): unknown[][] {
  return (columns[0] ?? []).map((_, i) => columns.map((column) => column[i]));
}

export async function completeBatch(
  adapter: DialectAdapter,
  completions: readonly Completion[],
): Promise<CompletionResult> {
  if (completions.length === 0) return { moved: new Set(), now: await adapter.now(adapter.db) };
  const c = columnsOf(completions);
  if (adapter.name === "postgres") {
    const rows = await statementRows<{ now: number; id: string | null }>(
      adapter,
      "carehooks_complete",
      POSTGRES_COMPLETE,
      [
        c.ids,
        c.tokens,
        c.statuses,
        c.attempts,
        c.delays,
        c.codes,
        c.errors,
        c.attemptIds,
        c.startedAt,
        c.durations,
        c.headers,
        c.bodies,
        c.attemptErrors,
        c.metas,
      ],
    );
    const moved = new Set(rows.flatMap((row) => (row.id === null ? [] : [row.id])));
    return { moved, now: rows[0]?.now as number };
  }
  return adapter.db.transaction().execute(async (trx) => {
    const now = Date.now();
    const attempts = zip([
      c.attemptIds,
      c.ids,
      c.attempts,
      c.startedAt,
      c.durations,
      c.headers,
      c.metas,
      c.codes,
      c.bodies,
      c.attemptErrors,
    ]);
    await rowsOf(trx, SQLITE_ATTEMPTS, { attempts: JSON.stringify(attempts) });
    const changes = zip([c.ids, c.tokens, c.statuses, c.attempts, c.delays, c.codes, c.errors]);
    const rows = await rowsOf<{ id: string }>(trx, SQLITE_COMPLETE, { changes: JSON.stringify(changes), now });
    return { moved: new Set(rows.map((row) => row.id)), now };
  });
}
