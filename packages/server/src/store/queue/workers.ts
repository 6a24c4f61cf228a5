/**
 * Worker liveness. Every process that runs a dispatcher has a row in
 * `worker` and beats it every fifth of CAREHOOKS_WORKER_TIMEOUT; its leases
 * name it. At each beat a worker also:
 * - keeps its own leases from expiring (a long request keeps its lease while
 *   its worker lives);
 * - returns to pending every lease whose worker is silent past the timeout
 *   (or has no row): a crashed worker's deliveries flow again within seconds,
 *   not after a whole lease;
 * - returns leases that expired anyway (the last resort, e.g. a worker that
 *   cannot reach the database) and cancels deliveries left pending for a
 *   subscription deleted or disabled while they were being written.
 * And about once a minute (delivery/heartbeat.ts), on PostgreSQL, it sets
 * right any subscription's in-flight count that disagrees with its
 * deliveries (reconcileInFlight, below).
 * Nothing here is on the hot path: a beat is a few statements every seconds.
 */
import type { DialectAdapter } from "../dialect/adapter.js";
import type { Db } from "../open.js";
import { heldIn, LIVE, STOPPED_ERROR } from "./held.js";
import { pendingJoinedToWebhooks, pendingWebhooks } from "./pending.js";
import { changedBy, numbered, rowsOf, sqliteQueue } from "./raw.js";

export interface WorkerIdentity {
  readonly id: string;
  readonly host: string;
  readonly pid: number;
}

export interface BeatSettings {
  readonly timeoutMs: number;
  readonly leaseMs: number;
}

export interface BeatResult {
  /** Deliveries returned to pending: a dead worker's, or expired. */
  readonly returned: number;
  /** Deliveries cancelled because their subscription is gone. */
  readonly cancelled: number;
}

const BEAT = `
INSERT INTO worker (id, host, pid, started_at, heartbeat_at) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at`;

/** Extends this worker's leases that are past half their length. */
const KEEP_LEASES = `
UPDATE delivery SET lease_expires_at = ?
WHERE status = 'in_flight' AND worker_id = ? AND lease_expires_at < ?`;

/** Leases whose worker is silent or unknown, and expired ones: back to pending. Never this worker's own. */
const RETURN_LEASES = `
UPDATE delivery SET status = 'pending', lease_token = NULL, lease_expires_at = NULL, worker_id = NULL, updated_at = ?
WHERE status = 'in_flight' AND (worker_id IS NULL OR worker_id <> ?) AND (
  lease_expires_at <= ?
  OR (worker_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM worker w WHERE w.id = delivery.worker_id AND w.heartbeat_at >= ?))
)`;

const FORGET_DEAD = "DELETE FROM worker WHERE heartbeat_at < ? AND id <> ?";

/**
 * Pending deliveries of deleted or disabled webhooks, cancelled. Every worker runs it at every beat, so
 * it looks only at the webhooks with pending deliveries (pending.ts), not at every webhook.
 */
const cancelOrphans = (dialect: DialectAdapter["name"]) => `
WITH RECURSIVE ${pendingWebhooks(dialect)}
UPDATE delivery SET status = 'cancelled', next_attempt_at = NULL, last_error = '${STOPPED_ERROR}', updated_at = ?
WHERE status = 'pending'
  AND subscription_id IN (
    SELECT s.id FROM ${pendingJoinedToWebhooks(dialect)}
    WHERE s.deleted_at IS NOT NULL OR s.state = 'disabled'
  )`;
const CANCEL_ORPHANS = { sqlite: cancelOrphans("sqlite"), postgres: cancelOrphans("postgres") };

/**
 * A lease this worker gives back unfinished: pending again, or cancelled when
 * its subscription was deleted or disabled meanwhile (its breaker opened while
 * the delivery waited in its lane), as a retry would be (complete.ts). `d` is
 * the delivery and `s` its subscription.
 */
const GIVE_BACK = (d: string, live = LIVE) => `
  status = CASE WHEN ${live} THEN 'pending' ELSE 'cancelled' END,
  next_attempt_at = CASE WHEN ${live} THEN ${d}.next_attempt_at END,
  last_error = CASE WHEN ${live} THEN ${d}.last_error ELSE '${STOPPED_ERROR}' END,
  lease_token = NULL, lease_expires_at = NULL, worker_id = NULL`;

const RELEASE = {
  sqlite: `
UPDATE delivery SET ${GIVE_BACK("delivery")}, updated_at = ?
FROM subscription s
WHERE delivery.status = 'in_flight' AND delivery.worker_id = ? AND s.id = delivery.subscription_id`,
  postgres: `
UPDATE delivery d SET ${GIVE_BACK("d")}, updated_at = $1
FROM subscription s
WHERE d.status = 'in_flight' AND d.worker_id = $2 AND s.id = d.subscription_id`,
};

function dialectText(adapter: DialectAdapter, text: string): string {
  return adapter.name === "postgres" ? numbered(text) : text;
}

function run(adapter: DialectAdapter, db: Db, text: string, parameters: readonly unknown[]): Promise<number> {
  return changedBy(db, dialectText(adapter, text), parameters);
}

/** Registers (or re-registers) this worker, or beats its row: on its own, so nothing else can make it fail. */
export async function beatRow(adapter: DialectAdapter, me: WorkerIdentity): Promise<void> {
  const now = await adapter.now(adapter.db);
  await run(adapter, adapter.db, BEAT, [me.id, me.host, me.pid, now, now]);
}

/** A beat's work besides the beat: keep this worker's leases, return the dead's, cancel orphans. */
export async function reap(adapter: DialectAdapter, me: WorkerIdentity, settings: BeatSettings): Promise<BeatResult> {
  const now = await adapter.now(adapter.db);
  return adapter.db.transaction().execute(async (trx) => {
    await run(adapter, trx, KEEP_LEASES, [now + settings.leaseMs, me.id, now + settings.leaseMs / 2]);
    const silentSince = now - settings.timeoutMs;
    const returned = await run(adapter, trx, RETURN_LEASES, [now, me.id, now, silentSince]);
    await run(adapter, trx, FORGET_DEAD, [silentSince, me.id]);
    const cancelled = await run(adapter, trx, CANCEL_ORPHANS[adapter.name], [now]);
    return { returned, cancelled };
  });
}

/** A whole beat: the row, then the work. */
export async function beat(adapter: DialectAdapter, me: WorkerIdentity, settings: BeatSettings): Promise<BeatResult> {
  await beatRow(adapter, me);
  return reap(adapter, me, settings);
}

/** PostgreSQL: the leases given back, each only under its own token. */
const RELEASE_SOME = `
UPDATE delivery d SET ${GIVE_BACK("d")}, updated_at = $1
FROM unnest($2::text[], $3::text[]) AS l(id, token), subscription s
WHERE d.id = l.id AND d.lease_token = l.token AND d.status = 'in_flight' AND s.id = d.subscription_id`;

/** SQLite: one held delivery given back, by the rowid `heldIn` found (held.ts), with the liveness read there. */
const RELEASE_ONE = `
UPDATE delivery SET ${GIVE_BACK("delivery", "@live")}, updated_at = @now
WHERE rowid = @rowid`;

/**
 * Deliveries this worker holds but will not finish (their outcome could not be
 * decided or written, or their subscription's breaker opened before they were
 * sent): back to pending (cancelled if their subscription was deleted or
 * disabled meanwhile), in one statement, each only under its own lease.
 */
export async function releaseLeases(
  adapter: DialectAdapter,
  leases: readonly { readonly id: string; readonly token: string }[],
): Promise<number> {
  if (leases.length === 0) return 0;
  const now = await adapter.now(adapter.db);
  if (adapter.name === "postgres") {
    return changedBy(adapter.db, RELEASE_SOME, [
      now,
      leases.map((lease) => lease.id),
      leases.map((lease) => lease.token),
    ]);
  }
  return sqliteQueue(adapter).queueTransaction((sql) => {
    const held = heldIn(
      sql,
      leases.map((lease) => [lease.id, lease.token] as const),
    );
    for (const { rowid, live } of held) sql.run(RELEASE_ONE, { rowid, live, now });
    return held.length;
  });
}

/**
 * At shutdown: this worker's unfinished deliveries go back to pending (or are
 * cancelled, their subscription deleted or disabled) and its row is removed.
 */
export async function releaseWorker(adapter: DialectAdapter, workerId: string): Promise<number> {
  const now = await adapter.now(adapter.db);
  return adapter.db.transaction().execute(async (trx) => {
    const released = await changedBy(trx, RELEASE[adapter.name], [now, workerId]);
    await run(adapter, trx, "DELETE FROM worker WHERE id = ?", [workerId]);
    return released;
  });
}

/**
 * Every lease in the database back to pending, every worker forgotten: for a
 * process that holds the database alone (SQLite under `serve`'s data
 * directory lock), so any lease left belongs to a process that died.
 */
export async function returnAllLeases(adapter: DialectAdapter): Promise<number> {
  const now = await adapter.now(adapter.db);
  return adapter.db.transaction().execute(async (trx) => {
    const returned = await run(
      adapter,
      trx,
      "UPDATE delivery SET status = 'pending', lease_token = NULL, lease_expires_at = NULL, worker_id = NULL, updated_at = ? WHERE status = 'in_flight'",
      [now],
    );
    await run(adapter, trx, "DELETE FROM worker WHERE true", []);
    return returned;
  });
}

/**
 * PostgreSQL keeps each subscription's in-flight count in `subscription.in_flight` (triggers on
 * delivery, migrations 0005, 0010 and 0017), and claims trust it for the endpoint's cap. Should it ever
 * disagree with the delivery rows (a hand edit, triggers disabled during a restore), a count too
 * high would hold the endpoint back for good. Found in one snapshot (exact for what is committed:
 * a count and the rows it counts change in one transaction), each is then recounted under its row
 * lock, in a statement of its own: a fresh snapshot taken after the lock sees every transaction
 * that changed the count before, and one that has changed rows but not yet the count waits for the
 * lock and applies its change to the recount.
 */
const DRIFTED = `
SELECT s.id FROM subscription s
LEFT JOIN (SELECT subscription_id, count(*)::int AS n FROM delivery WHERE status = 'in_flight' GROUP BY subscription_id) c
  ON c.subscription_id = s.id
WHERE s.in_flight <> coalesce(c.n, 0)
LIMIT 100`;
const LOCK_COUNT = "SELECT in_flight FROM subscription WHERE id = $1 FOR UPDATE";
const RECOUNT = `
UPDATE subscription s
SET in_flight = c.n,
  sender = CASE WHEN c.n = 0 THEN NULL ELSE coalesce(s.sender, c.worker) END
FROM (
  SELECT count(*)::int AS n, max(worker_id) AS worker FROM delivery WHERE subscription_id = $1 AND status = 'in_flight'
) c
WHERE s.id = $1 AND s.in_flight <> c.n
RETURNING s.in_flight`;

export interface Recount {
  readonly subscriptionId: string;
  readonly was: number;
  readonly now: number;
}

/** PostgreSQL: sets every in-flight count that disagrees with its deliveries right; SQLite counts rows and has none. */
export async function reconcileInFlight(adapter: DialectAdapter): Promise<Recount[]> {
  if (adapter.name !== "postgres") return [];
  const fixed: Recount[] = [];
  for (const { id } of await rowsOf<{ id: string }>(adapter.db, DRIFTED, [])) {
    const recount = await adapter.db.transaction().execute(async (trx) => {
      const [locked] = await rowsOf<{ in_flight: number }>(trx, LOCK_COUNT, [id]);
      const [set] = await rowsOf<{ in_flight: number }>(trx, RECOUNT, [id]);
      return locked && set
        ? { subscriptionId: id, was: Number(locked.in_flight), now: Number(set.in_flight) }
        : undefined;
    });
    if (recount) fixed.push(recount);
  }
  return fixed;
}
