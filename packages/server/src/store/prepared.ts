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

type ShapeCache<V extends object = Compiled> = WeakMap<object, BoundedMap<string, V>>;

/**
 * The compiled shapes for `db`'s dialect. Statements differ between dialects:
 * one cache per Kysely instance (its transactions share its adapter).
 */
function shapesFor<V extends object>(cache: ShapeCache<V>, db: Db, capacity: number): BoundedMap<string, V> {
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
const inserts: ShapeCache<CompiledInsert> = new WeakMap();

/** An insert's statement, and where each of its parameters comes from: a row's index and a column. */
interface CompiledInsert {
  readonly query: CompiledQuery;
  readonly sources: readonly (readonly [number, string])[];
}

function compileInsert<T extends keyof Database & string>(
  db: Db,
  table: T,
  rows: number,
  columns: readonly string[],
): CompiledInsert {
  const values = Array.from({ length: rows }, (_, i) =>
    Object.fromEntries(columns.map((column) => [column, `${PLACEHOLDER}${i}.${column}`])),
  );
  const names = Object.fromEntries(values.flatMap((_, i) => columns.map((column) => [`${i}.${column}`, true])));
  const { query, slots } = compileWithPlaceholders(db.insertInto(table).values(values as never), names);
  const sources = slots.map((slot) => {
    if (!("name" in slot)) throw new Error(`an insert into ${table} bound a constant`);
    const dot = slot.name.indexOf(".");
    return [Number(slot.name.slice(0, dot)), slot.name.slice(dot + 1)] as const;
  });
  return { query, sources };
}

/** The columns of `row` that have a value: Kysely leaves undefined ones out of an insert, and so does every shape here. */
export function columnsOf(row: Readonly<Record<string, unknown>>): string[] {
  return Object.keys(row).filter((column) => row[column] !== undefined);
}

/** How many columns of `row` have a value (Kysely leaves undefined ones out). */
function definedColumns(row: Readonly<Record<string, unknown>>): number {
  let n = 0;
  for (const column in row) if (row[column] !== undefined) n++;
  return n;
}

/**
 * Inserts rows that all have the same columns, in one statement. Each
 * parameter is read from its row by position: naming every value (as
 * `prepare` does) cost a create more than the insert itself.
 */
export async function insertRows<T extends keyof Database & string>(
  db: Db,
  table: T,
  rows: readonly InsertObject<Database, T>[],
): Promise<void> {
  const query = insertQuery(db, table, rows);
  if (query) await db.executeQuery(query);
}

/** `insertRows`'s statement and its values, compiled for `db`'s dialect; undefined for no rows. */
export function insertQuery<T extends keyof Database & string>(
  db: Db,
  table: T,
  rows: readonly InsertObject<Database, T>[],
): CompiledQuery | undefined {
  const first = rows[0] as Readonly<Record<string, unknown>> | undefined;
  if (first === undefined) return undefined;
  const columns = columnsOf(first);
  const compiled = shapesFor(inserts, db, INSERT_SHAPES).getOrSet(`${table}(${columns.join(",")})×${rows.length}`, () =>
    compileInsert(db, table, rows.length, columns),
  );
  for (const row of rows) {
    if (definedColumns(row as Record<string, unknown>) !== columns.length) {
      throw new Error(`rows for ${table} differ in their columns`);
    }
  }
  const parameters = compiled.sources.map(([i, column]) => {
    const value = (rows[i] as Record<string, unknown>)[column];
    if (value === undefined) throw new Error(`rows for ${table} differ in their columns`);
    return value;
  });
  return { ...compiled.query, parameters };
}
