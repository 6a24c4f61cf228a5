/**
 * Statements on the hot path (every create, every delivery) are built and
 * compiled by Kysely once per dialect, with placeholders, and later runs only
 * bind new values: building and compiling a query cost more than SQLite takes
 * to run most of ours.
 *
 * `prepare` takes a builder that receives placeholders instead of values; it
 * must build the same statement whatever the values are (no branches on
 * them, no nulls compared with `=`). An array value (an `in` list) gets one
 * placeholder per element: the statement is compiled once per list length,
 * and the builder may branch on lengths only. `insertRows` does the same for
 * inserts, per table, column list and row count.
 */
import type { Compilable, CompiledQuery, InsertObject, QueryResult } from "kysely";
import { BoundedMap } from "../domain/bounded-map.js";
import type { DialectAdapter } from "./dialect/adapter.js";
import type { Db } from "./open.js";
import type { Database } from "./schema.js";

const PLACEHOLDER = "\u0000carehooks-placeholder:";

/** Where each parameter of a compiled statement comes from: a named value (an element of it), or a constant. */
type Slot = { readonly name: string; readonly index?: number } | { readonly constant: unknown };

const ELEMENT = /^(.*)\[(\d+)\]$/;

interface Compiled {
  readonly query: CompiledQuery;
  readonly slots: readonly Slot[];
}

/** The compiled statement with placeholders, and which value each parameter takes. */
function compileWithPlaceholders(statement: Compilable<unknown>, values: object): Compiled {
  const query = statement.compile();
  if (query.sql.includes(PLACEHOLDER)) throw new Error("a placeholder was inlined into the SQL text");
  const slots = query.parameters.map((value): Slot => {
    if (typeof value !== "string" || !value.includes(PLACEHOLDER)) return { constant: value };
    const name = value.slice(PLACEHOLDER.length);
    const element = ELEMENT.exec(name);
    const slot = element ? { name: element[1] as string, index: Number(element[2]) } : { name };
    // A builder that computed with a placeholder (`p.n + 1`) would bind nonsense: refuse it here.
    if (!value.startsWith(PLACEHOLDER) || !(slot.name in values)) {
      throw new Error(`a placeholder was changed by the builder: ${JSON.stringify(value)}`);
    }
    return slot;
  });
  return { query, slots };
}

function bind(compiled: Compiled, values: Readonly<Record<string, unknown>>): CompiledQuery {
  const parameters = compiled.slots.map((slot) => {
    if (!("name" in slot)) return slot.constant;
    const value = values[slot.name];
    return slot.index === undefined ? value : (value as readonly unknown[])[slot.index];
  });
  return { ...compiled.query, parameters };
}

type ShapeCache = WeakMap<object, BoundedMap<string, Compiled>>;

/**
 * The compiled shapes for `db`'s dialect. Statements differ between dialects:
 * one cache per Kysely instance (its transactions share its adapter).
 */
function shapesFor(cache: ShapeCache, db: Db, capacity: number): BoundedMap<string, Compiled> {
  const dialect = db.getExecutor().adapter;
  let shapes = cache.get(dialect);
  if (!shapes) {
    shapes = new BoundedMap(capacity);
    cache.set(dialect, shapes);
  }
  return shapes;
}

/** Stand-ins for `values`: one per scalar, one per element of an array. */
function placeholders<P>(values: P): P {
  return new Proxy(
    {},
    {
      get: (_target, name) => {
        const value = (values as Record<string | symbol, unknown>)[name];
        const text = `${PLACEHOLDER}${String(name)}`;
        return Array.isArray(value) ? value.map((_, i) => `${text}[${i}]`) : text;
      },
    },
  ) as P;
}

/** The lengths of the array values: statements with `in` lists are compiled once per combination. */
function shapeOf(values: object): string {
  let shape = "";
  for (const [name, value] of Object.entries(values)) {
    if (Array.isArray(value)) shape += `${name}:${value.length};`;
  }
  return shape;
}

const SHAPES_PER_STATEMENT = 64;

export interface Prepared<P, R> {
  /** Every row. */
  all(db: Db, values: P): Promise<R[]>;
  /** The first row, if any. */
  first(db: Db, values: P): Promise<R | undefined>;
  /** Rows changed, for writes. */
  run(db: Db, values: P): Promise<number>;
}

export function prepare<P extends object, R>(build: (db: Db, p: P) => Compilable<R>): Prepared<P, R> {
  const compiled: ShapeCache = new WeakMap();
  const execute = (db: Db, values: P): Promise<QueryResult<R>> => {
    const entry = shapesFor(compiled, db, SHAPES_PER_STATEMENT).getOrSet(shapeOf(values), () =>
      compileWithPlaceholders(build(db, placeholders(values)), values),
    );
    return db.executeQuery<R>(bind(entry, values as Record<string, unknown>) as CompiledQuery<R>);
  };
  return {
    all: async (db, values) => (await execute(db, values)).rows,
    first: async (db, values) => (await execute(db, values)).rows[0],
    run: async (db, values) => Number((await execute(db, values)).numAffectedRows ?? 0),
  };
}

/** Statements made once per database by `make` (they may depend on the dialect's capabilities). */
export function perAdapter<T>(make: (adapter: DialectAdapter) => T): (adapter: DialectAdapter) => T {
  const made = new WeakMap<DialectAdapter, T>();
  return (adapter) => {
    let statements = made.get(adapter);
    if (statements === undefined) {
      statements = make(adapter);
      made.set(adapter, statements);
    }
    return statements;
  };
}

const INSERT_SHAPES = 256;
const inserts: ShapeCache = new WeakMap();

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
  const compiled = shapesFor(inserts, db, INSERT_SHAPES).getOrSet(
    `${table}(${columns.join(",")})×${rows.length}`,
    () => {
      const values = rows.map((_, i) =>
        Object.fromEntries(columns.map((column) => [column, `${PLACEHOLDER}${i}.${column}`])),
      );
      const names = Object.fromEntries(rows.flatMap((_, i) => columns.map((column) => [`${i}.${column}`, true])));
      return compileWithPlaceholders(db.insertInto(table).values(values as InsertObject<Database, T>[]), names);
    },
  );
  const values: Record<string, unknown> = {};
  rows.forEach((row, i) => {
    const record = row as Record<string, unknown>;
    const defined = Object.keys(record).filter((column) => record[column] !== undefined);
    if (defined.length !== columns.length) throw new Error(`rows for ${table} differ in their columns`);
    for (const column of columns) {
      if (record[column] === undefined) throw new Error(`rows for ${table} differ in their columns`);
      values[`${i}.${column}`] = record[column];
    }
  });
  await db.executeQuery(bind(compiled, values));
}
