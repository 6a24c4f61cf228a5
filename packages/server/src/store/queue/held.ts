/**
 * SQLite: which deliveries of a list are still held under the lease given
 * for each, found list first whatever the planner's statistics say.
 *
 * SQLite plans a join as nested loops, ordered by its statistics. With none
 * (as `serve` leaves the file) it loops over a JSON list and finds each
 * delivery by its id. Statistics from an operator's `ANALYZE` or
 * `PRAGMA optimize` could turn that around: taken while nothing was in
 * flight, they rate the partial indexes of in-flight deliveries as empty,
 * and SQLite scanned every delivery in flight against the whole list; taken
 * while the database was small, they rate the table as tiny, and it scanned
 * every delivery. The statements over lists fix the order themselves: CROSS
 * JOIN keeps the list outermost, INDEXED BY makes each step a primary-key
 * lookup. An UPDATE's own table cannot be put after another that way, so
 * completions and releases find their rows here and update each by rowid.
 * test/sqlite-plans.test.ts checks the plans under both kinds of statistics.
 */
import type { SqlStatements } from "../dialect/adapter.js";
import { DELIVERY_BY_ID, SUBSCRIPTION_BY_ID } from "../sqlite-keys.js";

/** SQL, true while the delivery's subscription `s` is neither deleted nor disabled. */
export const LIVE = "s.deleted_at IS NULL AND s.state <> 'disabled'";

/** The error of a delivery cancelled because its subscription was deleted or disabled. */
export const STOPPED_ERROR = "subscription deleted or disabled";

/** A delivery of the list still in flight under its lease: its place in the list, its rowid, and whether its webhook is live. */
export interface Held {
  readonly i: number;
  readonly rowid: number;
  /** 1 while its subscription is neither deleted nor disabled. */
  readonly live: number;
}

const SQLITE_HELD = `
SELECT j.key AS i, d.rowid AS rowid, (${LIVE}) AS live
FROM json_each(@leases) j
CROSS JOIN delivery d INDEXED BY ${DELIVERY_BY_ID} ON d.id = j.value ->> 0
CROSS JOIN subscription s INDEXED BY ${SUBSCRIPTION_BY_ID} ON s.id = d.subscription_id
WHERE d.lease_token = j.value ->> 1 AND d.status = 'in_flight'`;

/**
 * Run in the queue transaction (DialectAdapter.queueTransaction) that then changes them: SQLite's
 * single writer keeps what it found current.
 */
export function heldIn(sql: SqlStatements, leases: readonly (readonly [id: string, token: string])[]): Held[] {
  return sql.all<Held>(SQLITE_HELD, { leases: JSON.stringify(leases) });
}
