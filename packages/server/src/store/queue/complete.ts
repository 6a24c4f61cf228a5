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
import { heldIn, LIVE, STOPPED_ERROR } from "./held.js";
import { sqliteQueue, statementRows } from "./raw.js";

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

/**
 * The new status, next attempt and error of a delivery: `c(column)` is the
 * completion's value, `live` true while its subscription is neither deleted
 * nor disabled (a retry for one that is not is cancelled instead).
 */
const MOVE = (now: string, c: (column: string) => string, live: string) => `
  status = CASE WHEN ${c("status")} = 'pending' AND NOT (${live}) THEN 'cancelled' ELSE ${c("status")} END,
  attempts = ${c("attempts")},
  next_attempt_at = CASE WHEN ${c("status")} = 'pending' AND (${live}) THEN ${now} + ${c("delay")} END,
  last_status_code = ${c("code")},
  last_error = CASE WHEN ${c("status")} = 'pending' AND NOT (${live}) THEN '${STOPPED_ERROR}' ELSE ${c("error")} END,
  lease_token = NULL, lease_expires_at = NULL, worker_id = NULL, updated_at = ${now}`;

const POSTGRES_COMPLETE = `
WITH clock AS MATERIALIZED (SELECT (extract(epoch from statement_timestamp()) * 1000)::bigint AS now),
c AS (
  SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::int[], $5::bigint[], $6::int[], $7::text[])
    AS c(id, token, status, attempts, delay, code, error)
),
moved AS (
  UPDATE delivery d SET ${MOVE("clock.now", (column) => `c.${column}`, LIVE)}
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
 * SQLite: one held delivery's outcome, by the rowid `heldIn` found (held.ts), with
 * the liveness read there. One statement per row: a single UPDATE over the rowids
 * (`rowid IN (…)`) scanned the whole table under statistics of a small database.
 */
const SQLITE_MOVE_ONE = `
UPDATE delivery SET ${MOVE("@now", (column) => `@${column}`, "@live")}
WHERE rowid = @rowid`;

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
  // Outcomes a power cut takes back are sent again: they are not waited for (DialectAdapter.queueTransaction).
  return sqliteQueue(adapter).queueTransaction((sql) => {
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
    sql.run(SQLITE_ATTEMPTS, { attempts: JSON.stringify(attempts) });
    const moved = new Set<string>();
    for (const { i, rowid, live } of heldIn(sql, zip([c.ids, c.tokens]) as [string, string][])) {
      sql.run(SQLITE_MOVE_ONE, {
        rowid,
        live,
        now,
        status: c.statuses[i],
        attempts: c.attempts[i],
        delay: c.delays[i],
        code: c.codes[i],
        error: c.errors[i],
      });
      moved.add(c.ids[i] as string);
    }
    return { moved, now };
  });
}
