/**
 * Hot statements of the delivery queue are plain SQL, one text per dialect:
 * building them with Kysely on every call cost more than running them, and
 * the CTEs they need (locking, arrays, window functions) read better as SQL.
 */
import { CompiledQuery } from "kysely";
import type { DialectAdapter, Parameters } from "../dialect/adapter.js";
import type { Db } from "../open.js";

export async function rowsOf<R>(db: Db, text: string, parameters: Parameters): Promise<R[]> {
  // better-sqlite3 binds an object's values to the statement's named parameters.
  return (await db.executeQuery<R>(CompiledQuery.raw(text, parameters as unknown[]))).rows;
}

export async function changedBy(db: Db, text: string, parameters: Parameters): Promise<number> {
  return Number((await db.executeQuery(CompiledQuery.raw(text, parameters as unknown[]))).numAffectedRows ?? 0);
}

/**
 * Texts perLimit keeps: more than any caller makes (a claim's limits, one or two a process; a create
 * batch's delivery rows, a power of two up to 4 096, so thirteen at most), so none is made twice.
 */
const TEXTS_KEPT = 16;

/**
 * One statement text per value written into its SQL (a claim's limit, a create batch's row count),
 * made when first asked for, at most TEXTS_KEPT kept.
 */
export function perLimit(make: (value: number) => string): (value: number) => string {
  const made = new Map<number, string>();
  return (value) => {
    let text = made.get(value);
    if (text === undefined) {
      if (made.size >= TEXTS_KEPT) made.clear();
      text = make(value);
      made.set(value, text);
    }
    return text;
  };
}

/**
 * A statement that runs alone (its own transaction), prepared once per
 * connection under `name` where the database has that (PostgreSQL). Each
 * distinct text needs its own name.
 */
export async function statementRows<R>(
  adapter: DialectAdapter,
  name: string,
  text: string,
  parameters: readonly unknown[],
): Promise<R[]> {
  return adapter.preparedQuery
    ? adapter.preparedQuery<R>(name, text, parameters)
    : rowsOf<R>(adapter.db, text, parameters);
}

/** A SQLite adapter's queue transaction (every SQLite adapter has one). */
export function sqliteQueue(adapter: DialectAdapter): Required<Pick<DialectAdapter, "queueTransaction">> {
  if (!adapter.queueTransaction) throw new Error(`the ${adapter.name} adapter has no queue transaction`);
  return adapter as Required<Pick<DialectAdapter, "queueTransaction">>;
}

/** `?` placeholders as PostgreSQL's `$1, $2, …`, for the few statements both dialects share. */
export function numbered(text: string): string {
  let n = 0;
  return text.replace(/\?/g, () => `$${++n}`);
}
