/**
 * Statements on the hot path (every create, every delivery) are built and
 * compiled by Kysely once per dialect, with placeholders, and later runs only
 * bind new values: building and compiling a query cost more than SQLite takes
 * to run most of ours.
 *
 * `prepare` takes a builder that receives placeholders instead of values; it
 * must build the same statement whatever the values are (no branches on
 * them, no `in` lists, no nulls compared with `=`). `insertRows` does the
 * same for inserts, per table, column list and row count.
 */
import type { Compilable, CompiledQuery, InsertObject, QueryResult } from "kysely";
import { BoundedMap } from "../domain/bounded-map.js";
import type { Db } from "./open.js";
import type { Database } from "./schema.js";

const PLACEHOLDER = "\u0000carehooks-placeholder:";

/** Where each parameter of a compiled statement comes from: a named value, or a constant of the statement. */
type Slot = { readonly name: string } | { readonly constant: unknown };

interface Compiled {
  readonly query: CompiledQuery;
  readonly slots: readonly Slot[];
}

/** The compiled statement with placeholders, and which value each parameter takes. */
function compileWithPlaceholders(statement: Compilable<unknown>): Compiled {
  const query = statement.compile();
  if (query.sql.includes(PLACEHOLDER)) throw new Error("a placeholder was inlined into the SQL text");
  const slots = query.parameters.map((value): Slot => {
    if (typeof value === "string" && value.startsWith(PLACEHOLDER)) return { name: value.slice(PLACEHOLDER.length) };
    return { constant: value };
  });
  return { query, slots };
}

function bind(compiled: Compiled, values: Readonly<Record<string, unknown>>): CompiledQuery {
  const parameters = compiled.slots.map((slot) => ("name" in slot ? values[slot.name] : slot.constant));
  return { ...compiled.query, parameters };
}

/** Statements differ between dialects: one cache entry per Kysely instance (its transactions share its adapter). */
function dialectOf(db: Db): object {
  return db.getExecutor().adapter;
}

function placeholders<P>(): P {
  return new Proxy({}, { get: (_target, name) => `${PLACEHOLDER}${String(name)}` }) as P;
}

export interface Prepared<P, R> {
  /** Every row. */
  all(db: Db, values: P): Promise<R[]>;
  /** The first row, if any. */
  first(db: Db, values: P): Promise<R | undefined>;
  /** Rows changed, for writes. */
  run(db: Db, values: P): Promise<number>;
}

export function prepare<P extends object, R>(build: (db: Db, p: P) => Compilable<R>): Prepared<P, R> {
  const compiled = new WeakMap<object, Compiled>();
  const execute = (db: Db, values: P): Promise<QueryResult<R>> => {
    const dialect = dialectOf(db);
    let entry = compiled.get(dialect);
    if (!entry) {
      entry = compileWithPlaceholders(build(db, placeholders<P>()));
      compiled.set(dialect, entry);
    }
    return db.executeQuery<R>(bind(entry, values as Record<string, unknown>) as CompiledQuery<R>);
  };
  return {
    all: async (db, values) => (await execute(db, values)).rows,
    first: async (db, values) => (await execute(db, values)).rows[0],
    run: async (db, values) => Number((await execute(db, values)).numAffectedRows ?? 0),
  };
}

const INSERT_SHAPES = 256;
const inserts = new WeakMap<object, BoundedMap<string, Compiled>>();

/** Inserts rows that all have the same columns, in one statement. */
export async function insertRows<T extends keyof Database & string>(
  db: Db,
  table: T,
  rows: readonly InsertObject<Database, T>[],
): Promise<void> {
  const first = rows[0];
  if (first === undefined) return;
  // Kysely leaves undefined columns out; so does the shape.
  const columns = Object.keys(first).filter((column) => (first as Record<string, unknown>)[column] !== undefined);
  const dialect = dialectOf(db);
  let shapes = inserts.get(dialect);
  if (!shapes) {
    shapes = new BoundedMap(INSERT_SHAPES);
    inserts.set(dialect, shapes);
  }
  const compiled = shapes.getOrSet(`${table}(${columns.join(",")})×${rows.length}`, () => {
    const values = rows.map((_, i) =>
      Object.fromEntries(columns.map((column) => [column, `${PLACEHOLDER}${i}.${column}`])),
    );
    return compileWithPlaceholders(db.insertInto(table).values(values as InsertObject<Database, T>[]));
  });
  const values: Record<string, unknown> = {};
  rows.forEach((row, i) => {
    const record = row as Record<string, unknown>;
    for (const column of columns) {
      if (record[column] === undefined) throw new Error(`rows for ${table} differ in their columns`);
      values[`${i}.${column}`] = record[column];
    }
  });
  await db.executeQuery(bind(compiled, values));
}
