/**
 * Claims due deliveries for one worker: one statement per batch on
 * PostgreSQL; on SQLite one that leases, then one that reads the leased
 * deliveries' webhooks, in one transaction.
 *
 * Glossary:
 * - due: pending with next_attempt_at ≤ now (the database's clock).
 * - lease: a random token, the worker that holds it and an expiry; a delivery
 *   is in flight at exactly one worker while its lease holds. Its worker's
 *   heartbeat keeps the lease; a dead worker's leases go back to pending
 *   (store/queue/workers.ts), and an expired lease is the last resort.
 * - slots: per subscription, its allowance (below) minus its deliveries
 *   in flight. A degraded subscription has one slot, only after its probe
 *   time and only when nothing of it is in flight.
 * - credit: deliveries still in flight in the database whose response has
 *   already ended at this worker (their outcome waits for the next completion
 *   flush). Their slots are free: a busy endpoint is refilled as soon as its
 *   answers arrive, not when their outcomes commit. Never for a degraded
 *   subscription, whose probe's outcome decides whether it may have another.
 * - cap: requests open to one subscription at once, its max_in_flight or the
 *   server's MAX_IN_FLIGHT_PER_ENDPOINT, whichever is lower.
 * - allowance: how many of a subscription's deliveries may be leased at once,
 *   the claim's lookahead (at most LEASE_AHEAD) times its cap: what its sender
 *   sends and what waits in its lane (delivery/lanes.ts). Each claim's statements cost about the same
 *   whatever they lease, so a busy endpoint is served by few large claims.
 * - ordering: a `per_resource` subscription's delivery is due only when no
 *   earlier one of the same resource is open (IN_ORDER).
 * - sender (PostgreSQL): the one worker that sends a subscription's
 *   deliveries while any is in flight (endpoint affinity, migration 0010):
 *   other workers skip it until nothing of it is in flight or that worker's
 *   row is gone. Its sender keeps the endpoint's cap in memory, so it can
 *   lease ahead as SQLite's only dispatcher does.
 *
 * Only the subscriptions with pending deliveries are looked at, found by a
 * walk of the index of pending deliveries (pending.ts), so idle webhooks,
 * however many, cost a claim nothing.
 *
 * A subscription's deliveries go oldest due first, in the order of the
 * partial index on (subscription_id, next_attempt_at): no tie-break on the
 * id, which would make SQLite sort a whole backlog to take its first few.
 * Subscriptions are served oldest due first, then round-robin: every
 * subscription's first due delivery before any second one, so one hot
 * endpoint cannot starve the others. On PostgreSQL the statement locks the
 * subscriptions it takes work from (FOR NO KEY UPDATE SKIP LOCKED) and reads
 * their in-flight count from the locked rows, so two workers never fill the
 * same slots; SQLite's single writer gives the same for free.
 */
import { randomBytes } from "node:crypto";
import type { Health } from "../../domain/breaker.js";
import type { DialectAdapter } from "../dialect/adapter.js";
import { DELIVERY_BY_ID, EVENT_BY_ID, SUBSCRIPTION_BY_ID } from "../sqlite-keys.js";
import { firstDue, pendingJoinedToWebhooks, pendingWebhooks } from "./pending.js";
import { perLimit, rowsOf, sqliteQueue, statementRows } from "./raw.js";

/** Subscriptions looked at per claim: enough that a few hundred that cannot take work never starve the rest. */
const CANDIDATES = 200;

/**
 * A subscription's allowance is at most this many times its cap: its sender leases
 * ahead what it does not send yet, and claims again once half of that has
 * gone (delivery/lanes.ts). Twice the cap made a busy endpoint's claims carry
 * about 9 deliveries each (702 claims for a backlog of 6 200); eight times,
 * about 35 (176 claims), each costing about the same. Sixteen on both databases.
 * SQLite: the embedded dispatcher thread's claim goes through the main thread
 * and waits for the completion write before it. Measured while those writes
 * still waited for their fsync (8–9 ms a claim during a drain), that was
 * longer than half of eight times the cap lasted at 3.5k deliveries/s (6 % of
 * freed slots found their lane empty); sixteen times made that 0.5–1 % and
 * the claims 164 → 100. On PostgreSQL sixteen times (claims of about 60
 * instead of 38 in a drain) cut the database's CPU per delivery by about a
 * tenth (eight before). This is the most: what waits leased ahead counts against the worker's
 * MAX_IN_FLIGHT, so the dispatcher asks for less as more endpoints have lanes
 * there (ClaimLimits.leaseAhead), to leave room for others as they come.
 */
export const LEASE_AHEAD = 16;

/** The lookahead a claim uses when asked for `asked` (whole, from 1 to LEASE_AHEAD; LEASE_AHEAD when not a number). */
export function leaseAheadFor(asked?: number): number {
  const whole = Math.floor(asked ?? LEASE_AHEAD);
  return Number.isFinite(whole) ? Math.max(1, Math.min(LEASE_AHEAD, whole)) : LEASE_AHEAD;
}

/** Its cap (its own max_in_flight, never above the server's), as SQL over a subscription row `s`. */
const capOf = (cap: number, min: "min" | "least") => `${min}(coalesce(s.max_in_flight, ${cap}), ${cap})`;

/**
 * An ordered subscription's delivery `q` may go only when no earlier delivery
 * of the same resource is still open (pending or in flight): one at a time,
 * in the order written, and a failed or cancelled one no longer holds the
 * next back. The index delivery_resource_open answers it.
 */
const IN_ORDER = `NOT EXISTS (
      SELECT 1 FROM delivery p
      WHERE p.subscription_id = q.subscription_id AND p.resource_key = q.resource_key
        AND p.status IN ('pending', 'in_flight') AND p.id < q.id
    )`;

export interface ClaimLimits {
  /** Free slots of this worker. */
  readonly limit: number;
  /** The server's cap on requests open to one subscription (a subscription's own max_in_flight may be lower). */
  readonly perEndpoint: number;
  readonly leaseMs: number;
  readonly workerId: string;
  /**
   * How many times its cap a subscription may have leased at once (its allowance), from 1 to the
   * LEASE_AHEAD, which is the default.
   */
  readonly leaseAhead?: number;
  /**
   * Deliveries (id → lease token) whose response ended here but whose outcome
   * is not written yet. Only those still in flight under that lease count: a
   * lease taken over, or an outcome written after all, frees nothing twice.
   */
  readonly credit?: ReadonlyMap<string, string>;
}

/**
 * A webhook as a claim read it: where and how its deliveries are sent, and its
 * breaker state (domain/breaker.ts). One object per webhook and claim, shared
 * by every delivery of it the claim leased, so a claim passed between threads
 * carries it once. SQLite reads the row once per claim; PostgreSQL's claim
 * returns its columns with each delivery, and they are gathered here.
 */
export interface ClaimedWebhook extends Health {
  readonly id: string;
  readonly endpoint: string;
  readonly signing_key: string | null;
  readonly previous_signing_key: string | null;
  readonly previous_key_expires_at: number | null;
  readonly max_in_flight: number | null;
  readonly rate_limit: number | null;
  /** Sealed JSON of its custom headers, or null. */
  readonly headers: string | null;
  readonly timeout_ms: number | null;
  /** JSON list of ms, or null for the server's schedule. */
  readonly retry_schedule: string | null;
}

/** A leased delivery with what the sender needs. */
export interface ClaimedDelivery {
  readonly id: string;
  readonly event_id: string;
  readonly subscription_id: string;
  readonly event_name: string;
  readonly attempts: number;
  readonly retries_from: number;
  readonly lease_token: string;
  readonly payload: string;
  readonly webhook: ClaimedWebhook;
}

export interface ClaimResult {
  readonly claimed: ClaimedDelivery[];
}

/** A claimed delivery's own columns, `payload` aside. */
const DELIVERY_COLUMNS = "id, event_id, subscription_id, event_name, attempts, retries_from, lease_token";

/** A claimed webhook's columns but its id, over a subscription row `s`. */
const WEBHOOK_SETTINGS = `
  s.endpoint, s.signing_key, s.previous_signing_key, s.previous_key_expires_at,
  s.state, s.state_reason, s.state_changed_at, s.failure_streak, s.failing_since, s.probe_at,
  s.max_in_flight, s.rate_limit, s.headers, s.timeout_ms, s.retry_schedule`;

/**
 * SQLite: @credit is JSON [[delivery id, lease token], …], driving its loop
 * whatever the statistics say; the deliveries each candidate gives, and the
 * UPDATE's, are found by primary key too (CROSS JOIN and INDEXED BY: see
 * held.ts). Statistics of a small database made it scan the whole table.
 * The per-subscription LIMIT and the candidate LIMIT are written into the text:
 * SQLite plans a constant LIMIT with a small sorter heap. A subscription gives
 * at most its share of the claim, the limit over the candidates (rounded up):
 * the batch takes the candidates' first rows, then their second, …, so rows past
 * the share were never chosen. With 200 webhooks backlogged, 16 × their cap
 * each made the window sort 32 000 rows to keep 100 (55 ms a claim), the
 * claim's limit each 20 000 (33–72 ms), their share 200 (6–9 ms). A
 * subscription may give its cap when that is more than its share, as on
 * PostgreSQL: candidates that give less than their share (their due deliveries
 * held back by ordering) would otherwise leave a busy endpoint one or two
 * requests a claim. That costs the 200 webhooks' claim of 100 about 4 ms (10.6
 * against 6.5 ms, twelve claims each way); the LIMIT stays a constant (SQLite
 * allows no outer column there), each subscription's own cap applied with its
 * free slots after. The floor is never more than the claim's limit, so caps
 * above it list no more than it; caps near the claim's limit (100) would still
 * have 200 backlogged candidates list up to 20 000 rows (left). The batch
 * LIMIT is cast: better-sqlite3 binds a JavaScript number as a REAL, and a REAL
 * limit over the window made the statement 4 × slower (295 → 76 µs with 6 000
 * due).
 * The UPDATE returns what the sender needs of each delivery, its payload read
 * by the event's primary key; its webhook is read once per claim
 * (SQLITE_WEBHOOKS). Reading the leased rows again afterwards, joined to their
 * event and webhook, cost as much as choosing and leasing them.
 */
const sqliteClaim = perLimit(
  (cap) => `
WITH RECURSIVE ${pendingWebhooks("sqlite")},
credit(id, n) AS (
  SELECT d.subscription_id, count(*) FROM json_each(@credit) j
  CROSS JOIN delivery d INDEXED BY ${DELIVERY_BY_ID} ON d.id = j.value ->> 0 AND d.lease_token = j.value ->> 1 AND d.status = 'in_flight'
  GROUP BY d.subscription_id
),
counted AS (
  SELECT s.id, s.state, s.probe_at, s.ordering, ${capOf(cap, "min")} AS cap, CAST(@ahead AS INTEGER) * ${capOf(cap, "min")} AS allowance,
    (SELECT count(*) FROM delivery f WHERE f.subscription_id = s.id AND f.status = 'in_flight') AS busy,
    ${firstDue("s.id")} AS due
  FROM ${pendingJoinedToWebhooks("sqlite")}
  WHERE s.deleted_at IS NULL AND s.state <> 'disabled'
),
roomy AS (
  SELECT id, due, free, ordering, cap FROM (
    SELECT id, due, ordering, cap,
      CASE WHEN state = 'degraded' THEN (busy = 0 AND coalesce(probe_at, 0) <= @now)
           ELSE min(allowance, allowance - busy + coalesce((SELECT n FROM credit WHERE credit.id = counted.id), 0)) END AS free
    FROM counted WHERE due <= @now
  ) WHERE free > 0
  ORDER BY due LIMIT ${CANDIDATES}
),
share(n) AS (SELECT (CAST(@limit AS INTEGER) + count(*) - 1) / max(count(*), 1) FROM roomy),
ranked AS (
  SELECT d.id, d.next_attempt_at AS at, min(r.free, max((SELECT n FROM share), r.cap)) AS free,
    row_number() OVER (PARTITION BY r.id ORDER BY d.next_attempt_at, d.id) AS rn
  FROM roomy r CROSS JOIN delivery d INDEXED BY ${DELIVERY_BY_ID} ON d.id IN (
    SELECT q.id FROM delivery q
    WHERE q.subscription_id = r.id AND q.status = 'pending' AND q.next_attempt_at <= @now
      AND (r.ordering = 'none' OR ${IN_ORDER})
    ORDER BY q.next_attempt_at LIMIT min(${LEASE_AHEAD * cap}, max((SELECT n FROM share), min(${cap}, CAST(@limit AS INTEGER))))
  )
)
UPDATE delivery INDEXED BY ${DELIVERY_BY_ID} SET status = 'in_flight', lease_token = @token, lease_expires_at = @expires, worker_id = @worker, updated_at = @now
WHERE id IN (SELECT id FROM ranked WHERE rn <= free ORDER BY rn, at LIMIT CAST(@limit AS INTEGER))
RETURNING ${DELIVERY_COLUMNS},
  (SELECT e.payload FROM event e INDEXED BY ${EVENT_BY_ID} WHERE e.id = delivery.event_id) AS payload`,
);

/** The claimed deliveries' webhooks, looked up list first by primary key whatever the statistics say (see held.ts). */
const SQLITE_WEBHOOKS = `
SELECT s.id, ${WEBHOOK_SETTINGS}
FROM json_each(@ids) j
CROSS JOIN subscription s INDEXED BY ${SUBSCRIPTION_BY_ID} ON s.id = j.value`;

/**
 * PostgreSQL: $1 token, $2 lease ms, $3 worker, $4 credited delivery ids, $5 their lease tokens, $6 limit,
 * $7 lease ahead.
 * FOR UPDATE locks every row a candidate's lateral returns, chosen or not: with each giving all its free
 * slots, a claim of 100 over ten busy webhooks locked 800 rows, and claims of 40 from one webhook with 80
 * free cost 180 µs of PostgreSQL CPU per delivery against 163 (bench/queue-micro.mjs --postgres). So a
 * candidate gives at most its share of the limit (rounded up), or its cap (at most the limit) when that
 * is more: candidates that give less than their share (their due deliveries held back by ordering) leave
 * the claim short, but never leave a busy endpoint's requests below its cap. Caps near the limit make
 * every candidate lock that many rows again (left).
 * A candidate's first due time is read by its key in the index (a scalar subquery, which PostgreSQL
 * never turns into a join): asked as EXISTS (a delivery due by now), it was planned as a semi join
 * that read and sorted every pending delivery: 2.5 of the 3.2 ms the candidates took with 3 000 pending.
 * OFFSET 0 keeps that subquery whole, so each first due time is read once; pulled up into the join, it
 * was read again for the ORDER BY. A claim of 100 over 300 webhooks with work: 9.5 ms against 10.1
 * (medians of fifteen, EXPLAIN ANALYZE of the generic plan).
 * Under WITH RECURSIVE, a CTE whose own body names it (`FOR NO KEY UPDATE OF s` in a CTE called `s`)
 * counts as recursive: no CTE here is named as a table alias in its own body.
 */
const postgresClaim = perLimit((cap) => {
  const allowance = `($7::int * ${capOf(cap, "least")})`;
  return `
WITH RECURSIVE clock AS MATERIALIZED (SELECT (extract(epoch from statement_timestamp()) * 1000)::bigint AS now),
${pendingWebhooks("postgres")},
credit AS (
  SELECT d.subscription_id AS id, count(*)::int AS n FROM unnest($4::text[], $5::text[]) AS c(id, token)
  JOIN delivery d ON d.id = c.id AND d.lease_token = c.token AND d.status = 'in_flight'
  GROUP BY d.subscription_id
),
candidates AS (
  SELECT s.id, s.endpoint, s.signing_key, s.previous_signing_key, s.previous_key_expires_at,
    s.state, s.state_reason, s.state_changed_at, s.failure_streak, s.failing_since, s.probe_at,
    s.max_in_flight, s.rate_limit, s.ordering, s.headers, s.timeout_ms, s.retry_schedule,
    CASE WHEN s.state = 'degraded' THEN 1
         ELSE least(${allowance}, ${allowance} - s.in_flight + coalesce((SELECT n FROM credit WHERE credit.id = s.id), 0)) END AS free
  FROM (
    SELECT pending.id,
      ${firstDue("pending.id")} AS due
    FROM pending
    OFFSET 0
  ) waiting
  JOIN subscription s ON s.id = waiting.id, clock
  WHERE s.deleted_at IS NULL AND s.state <> 'disabled'
    AND (s.sender IS NULL OR s.sender = $3 OR NOT EXISTS (SELECT 1 FROM worker w WHERE w.id = s.sender))
    AND CASE WHEN s.state = 'degraded' THEN s.in_flight = 0 AND coalesce(s.probe_at, 0) <= clock.now
             ELSE s.in_flight - coalesce((SELECT n FROM credit WHERE credit.id = s.id), 0) < ${allowance} END
    AND waiting.due <= clock.now
  ORDER BY waiting.due
  LIMIT ${CANDIDATES}
  FOR NO KEY UPDATE OF s SKIP LOCKED
),
share AS (SELECT ($6::int + count(*) - 1) / greatest(count(*), 1) AS n FROM candidates),
picked AS (
  SELECT q.id, q.next_attempt_at AS at, row_number() OVER (PARTITION BY s.id ORDER BY q.next_attempt_at, q.id) AS rn
  FROM candidates s CROSS JOIN clock CROSS JOIN LATERAL (
    SELECT q.id, q.next_attempt_at FROM delivery q
    WHERE q.subscription_id = s.id AND q.status = 'pending' AND q.next_attempt_at <= clock.now
      AND (s.ordering = 'none' OR ${IN_ORDER})
    ORDER BY q.next_attempt_at
    LIMIT least(s.free, greatest((SELECT n FROM share), least(${capOf(cap, "least")}, $6::int)))
    FOR UPDATE OF q SKIP LOCKED
  ) q
),
chosen AS (SELECT id FROM picked ORDER BY rn, at LIMIT $6),
leased AS (
  UPDATE delivery d
  SET status = 'in_flight', lease_token = $1, lease_expires_at = clock.now + $2, worker_id = $3, updated_at = clock.now
  FROM clock
  WHERE d.id = ANY (ARRAY(SELECT id FROM chosen))
  RETURNING d.id, d.event_id, d.subscription_id, d.event_name, d.attempts, d.retries_from, d.lease_token
)
SELECT d.id, d.event_id, d.subscription_id, d.event_name, d.attempts, d.retries_from, d.lease_token, e.payload,
  ${WEBHOOK_SETTINGS}
FROM leased d JOIN event e ON e.id = d.event_id JOIN candidates s ON s.id = d.subscription_id`;
});

export async function claimBatch(adapter: DialectAdapter, limits: ClaimLimits): Promise<ClaimResult> {
  if (limits.limit <= 0) return { claimed: [] };
  const token = randomBytes(16).toString("hex");
  const credit = [...(limits.credit ?? new Map<string, string>())];
  const ahead = leaseAheadFor(limits.leaseAhead);
  if (adapter.name === "postgres") {
    const cap = limits.perEndpoint;
    const rows = await statementRows<PostgresClaimed>(adapter, `carehooks_claim_${cap}`, postgresClaim(cap), [
      token,
      limits.leaseMs,
      limits.workerId,
      credit.map(([id]) => id),
      credit.map(([, token]) => token),
      limits.limit,
      ahead,
    ]);
    return { claimed: webhooksShared(rows) };
  }
  // SQLite runs in process: the clock is this process's, and two statements cost no round trip. The
  // leases need not be on disk before they are sent, only what they lease (DialectAdapter.queueTransaction).
  return sqliteQueue(adapter).queueTransaction((sql) => {
    const now = Date.now();
    const leased = sql.all<Omit<ClaimedDelivery, "webhook">>(sqliteClaim(limits.perEndpoint), {
      token,
      expires: now + limits.leaseMs,
      worker: limits.workerId,
      now,
      credit: JSON.stringify(credit),
      limit: limits.limit,
      ahead,
    });
    if (leased.length === 0) return { claimed: [] };
    const ids = JSON.stringify([...new Set(leased.map((row) => row.subscription_id))]);
    const webhooks = new Map(sql.all<ClaimedWebhook>(SQLITE_WEBHOOKS, { ids }).map((webhook) => [webhook.id, webhook]));
    const claimed = leased.map((row) => {
      const webhook = webhooks.get(row.subscription_id);
      // Leased in this transaction, so its row is there; if not, nothing is leased rather than left stranded.
      if (webhook === undefined) throw new Error(`claimed a delivery of webhook ${row.subscription_id}, not found`);
      return claimedOf(row, webhook);
    });
    return { claimed };
  });
}

/** A row of PostgreSQL's claim: the delivery's columns and its webhook's, `id` (its subscription_id) aside. */
type PostgresClaimed = Omit<ClaimedDelivery, "webhook"> & Omit<ClaimedWebhook, "id">;

/** PostgreSQL's rows as claimed deliveries, each webhook one object shared by its deliveries. */
function webhooksShared(rows: readonly PostgresClaimed[]): ClaimedDelivery[] {
  const webhooks = new Map<string, ClaimedWebhook>();
  return rows.map((row) => {
    let webhook = webhooks.get(row.subscription_id);
    if (webhook === undefined) {
      webhook = webhookOf(row);
      webhooks.set(row.subscription_id, webhook);
    }
    return claimedOf(row, webhook);
  });
}

/** The webhook's columns of a PostgreSQL claim row, made once per webhook and claim. */
function webhookOf(row: PostgresClaimed): ClaimedWebhook {
  // The delivery's columns are named to leave the webhook's in `settings`.
  const { id, event_id, subscription_id, event_name, attempts, retries_from, lease_token, payload, ...settings } = row;
  return { id: subscription_id, ...settings };
}

/**
 * A claimed delivery: the row's own columns, named one by one, and its webhook. Not a spread
 * (`{ ...row, webhook }`): with it, more of what a claim reads reached V8's old generation
 * (bench/queue-micro.mjs, three rounds of 6 000, two runs each: 12.5 and 12.7 MB promoted
 * against 8.8 and 8.9 MB).
 */
function claimedOf(row: Omit<ClaimedDelivery, "webhook">, webhook: ClaimedWebhook): ClaimedDelivery {
  const { id, event_id, subscription_id, event_name, attempts, retries_from, lease_token, payload } = row;
  return { id, event_id, subscription_id, event_name, attempts, retries_from, lease_token, payload, webhook };
}

/** The webhooks with pending deliveries only (pending.ts), each row found by its key. */
const NEXT_DUE = (dialect: DialectAdapter["name"], clock: string) => `
WITH RECURSIVE ${pendingWebhooks(dialect)}
SELECT min(CASE WHEN t.state = 'degraded' AND t.probe_at > t.due THEN t.probe_at ELSE t.due END) AS due, ${clock} AS now
FROM (
  SELECT s.state, s.probe_at,
    ${firstDue("s.id")} AS due
  FROM ${pendingJoinedToWebhooks(dialect)}
  WHERE s.deleted_at IS NULL AND s.state <> 'disabled'
) t
WHERE t.due IS NOT NULL`;
const POSTGRES_NEXT_DUE = NEXT_DUE("postgres", "(extract(epoch from statement_timestamp()) * 1000)::bigint");
const SQLITE_NEXT_DUE = NEXT_DUE("sqlite", "@now");

/**
 * How long until the next pending delivery can be sent, for the dispatcher's
 * sleep: until its next attempt time, or its degraded subscription's probe
 * time when later. Undefined when nothing is pending.
 */
export async function nextDueIn(adapter: DialectAdapter): Promise<number | undefined> {
  const [row] =
    adapter.name === "postgres"
      ? await statementRows<{ due: number | null; now: number }>(adapter, "carehooks_next_due", POSTGRES_NEXT_DUE, [])
      : await rowsOf<{ due: number | null; now: number }>(adapter.db, SQLITE_NEXT_DUE, { now: Date.now() });
  return row === undefined || row.due === null ? undefined : Number(row.due) - Number(row.now);
}
