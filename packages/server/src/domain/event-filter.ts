/**
 * A webhook's attribute filter (docs/webhooks.md, "Filters"): conditions on
 * the fields of an event's payload, checked when the event is written, so an
 * event that does not match creates no delivery for that webhook.
 *
 * The language is a small, closed subset of MongoDB's query operators:
 *
 *     {"data.clinic_id": {"$in": ["clinic-7", "clinic-9"]}, "data.action": "completed"}
 *
 * - keys are dotted payload paths (`data.clinic_id`, `service`), every one
 *   of which must hold; a bare value means `$eq`;
 * - per field: `$eq`, `$neq`, `$in`, `$nin` (lists of scalars) and `$exists`
 *   (present and not null);
 * - logic: `$and` and `$or` over lists of filters, `$not` over one.
 *
 * Pure: `compileFilter` checks a filter and returns its predicate, or throws
 * INVALID_REQUEST naming the field or operator to fix. Size, depth and the
 * number of conditions are bounded, so a filter costs at most a few
 * microseconds per event.
 */
import type { TSchema } from "@sinclair/typebox";
import { invalidRequest } from "./errors.js";

/** A JSON scalar: what a condition compares a field with. */
type Scalar = string | number | boolean | null;
/** Tells whether a parsed payload matches. */
export type EventPredicate = (payload: unknown) => boolean;

export const FILTER_LIMITS = {
  /** Bytes of the filter as JSON. */
  bytes: 4096,
  /** Conditions on fields, in all. */
  conditions: 50,
  /** `$and` / `$or` / `$not` inside one another. */
  depth: 5,
  /** Values in one `$in` or `$nin`. */
  values: 100,
  /** Characters of one compared string. */
  stringChars: 256,
} as const;

const FIELD_OPERATORS = ["$eq", "$neq", "$in", "$nin", "$exists"] as const;
const LOGIC_OPERATORS = ["$and", "$or", "$not"] as const;

/**
 * The dotted paths of every scalar field in the given payload schemas
 * (`service`, `data.clinic_id`, …): what a filter may name.
 */
export function filterFieldsOf(schemas: readonly TSchema[]): ReadonlySet<string> {
  const fields = new Set<string>();
  const walk = (schema: TSchema, prefix: string) => {
    const properties = (schema as { properties?: Record<string, TSchema> }).properties;
    if (properties === undefined) {
      fields.add(prefix);
      return;
    }
    for (const [name, property] of Object.entries(properties)) walk(property, prefix ? `${prefix}.${name}` : name);
  };
  for (const schema of schemas) walk(schema, "");
  return fields;
}

interface Budget {
  conditions: number;
}

/** Checks a filter and returns its predicate; throws INVALID_REQUEST naming what is wrong. */
export function compileFilter(filter: unknown, fields: ReadonlySet<string>): EventPredicate {
  if (Buffer.byteLength(JSON.stringify(filter) ?? "", "utf8") > FILTER_LIMITS.bytes) {
    throw invalidRequest(`filter is larger than ${FILTER_LIMITS.bytes} bytes of JSON`);
  }
  return compileAll(filter, "filter", fields, 0, { conditions: 0 });
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** An object of clauses, all of which must hold. */
function compileAll(
  filter: unknown,
  where: string,
  fields: ReadonlySet<string>,
  depth: number,
  budget: Budget,
): EventPredicate {
  if (!isPlainObject(filter)) throw invalidRequest(`${where} must be an object of conditions`);
  const keys = Object.keys(filter);
  if (keys.length === 0) throw invalidRequest(`${where} must hold at least one condition`);
  const clauses = keys.map((key) => {
    const value = filter[key];
    if (key.startsWith("$")) return compileLogic(key, value, `${where}.${key}`, fields, depth + 1, budget);
    if (!fields.has(key)) {
      throw invalidRequest(`${where} names unknown field "${key}"; filterable fields: ${[...fields].join(", ")}`);
    }
    return compileField(key, value, `${where}["${key}"]`, budget);
  });
  return clauses.length === 1 ? (clauses[0] as EventPredicate) : (payload) => clauses.every((test) => test(payload));
}

function compileLogic(
  operator: string,
  operand: unknown,
  where: string,
  fields: ReadonlySet<string>,
  depth: number,
  budget: Budget,
): EventPredicate {
  if (!(LOGIC_OPERATORS as readonly string[]).includes(operator)) {
    throw invalidRequest(`unknown operator ${operator} at ${where}; use one of ${LOGIC_OPERATORS.join(", ")}`);
  }
  if (depth > FILTER_LIMITS.depth) {
    throw invalidRequest(`${where} nests $and, $or and $not deeper than ${FILTER_LIMITS.depth} levels`);
  }
  if (operator === "$not") {
    const inner = compileAll(operand, where, fields, depth, budget);
    return (payload) => !inner(payload);
  }
  if (!Array.isArray(operand) || operand.length === 0) {
    throw invalidRequest(`${where} must be a non-empty list of filters`);
  }
  const parts = operand.map((part, i) => compileAll(part, `${where}[${i}]`, fields, depth, budget));
  return operator === "$and"
    ? (payload) => parts.every((test) => test(payload))
    : (payload) => parts.some((test) => test(payload));
}

/** The conditions on one field: a bare scalar (`$eq`) or an object of field operators. */
function compileField(path: string, spec: unknown, where: string, budget: Budget): EventPredicate {
  const read = reader(path);
  const operators = isPlainObject(spec) ? Object.entries(spec) : [["$eq", spec] as const];
  if (operators.length === 0) throw invalidRequest(`${where} must hold at least one operator`);
  const tests = operators.map(([operator, operand]) => {
    budget.conditions += 1;
    if (budget.conditions > FILTER_LIMITS.conditions) {
      throw invalidRequest(`filter has more than ${FILTER_LIMITS.conditions} conditions`);
    }
    return compileOperator(operator, operand, `${where}.${operator}`, read);
  });
  return tests.length === 1 ? (tests[0] as EventPredicate) : (payload) => tests.every((test) => test(payload));
}

function compileOperator(
  operator: string,
  operand: unknown,
  where: string,
  read: (payload: unknown) => unknown,
): EventPredicate {
  switch (operator) {
    case "$eq": {
      const value = scalar(operand, where);
      return (payload) => read(payload) === value;
    }
    case "$neq": {
      const value = scalar(operand, where);
      return (payload) => read(payload) !== value;
    }
    case "$in":
    case "$nin": {
      const values = new Set(scalarList(operand, where));
      return operator === "$in"
        ? (payload) => values.has(read(payload) as Scalar)
        : (payload) => !values.has(read(payload) as Scalar);
    }
    case "$exists": {
      if (typeof operand !== "boolean") throw invalidRequest(`${where} must be true or false`);
      return (payload) => (read(payload) != null) === operand;
    }
    default:
      throw invalidRequest(
        `unknown operator ${operator} at ${where.slice(0, where.lastIndexOf("."))}; use one of ${FIELD_OPERATORS.join(", ")}`,
      );
  }
}

function scalar(value: unknown, where: string): Scalar {
  if (Array.isArray(value)) throw invalidRequest(`${where} is a list: use $in to match any of several values`);
  if (isPlainObject(value)) throw invalidRequest(`${where} must be a string, number, boolean or null`);
  if (typeof value === "string" && value.length > FILTER_LIMITS.stringChars) {
    throw invalidRequest(`${where} is longer than ${FILTER_LIMITS.stringChars} characters`);
  }
  if (typeof value === "number" && !Number.isFinite(value)) throw invalidRequest(`${where} must be a finite number`);
  return value as Scalar;
}

function scalarList(value: unknown, where: string): Scalar[] {
  if (!Array.isArray(value) || value.length === 0 || value.length > FILTER_LIMITS.values) {
    throw invalidRequest(`${where} must be a list of 1 to ${FILTER_LIMITS.values} values`);
  }
  return value.map((item, i) => scalar(item, `${where}[${i}]`));
}

/** Reads a dotted path from a parsed payload; undefined where any step is missing. */
function reader(path: string): (payload: unknown) => unknown {
  const steps = path.split(".");
  return (payload) => {
    let at: unknown = payload;
    for (const step of steps) {
      if (!isPlainObject(at) || !Object.hasOwn(at, step)) return undefined;
      at = at[step];
    }
    return at;
  };
}
