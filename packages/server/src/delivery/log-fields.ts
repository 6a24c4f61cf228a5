/**
 * Log fields as plain data, for a log line posted from the dispatcher thread
 * to the main one: an Error's own fields (code, cause) do not survive a
 * structured copy, and functions cannot be copied at all.
 */
export function plain(value: unknown, ancestors = new WeakSet<object>()): unknown {
  if (value === null || typeof value !== "object") return typeof value === "function" ? undefined : value;
  // Only an object inside itself is circular; one that appears twice side by side is written twice.
  if (ancestors.has(value)) return "[circular]";
  ancestors.add(value);
  try {
    const fields = (of: object) =>
      Object.fromEntries(Object.entries(of).map(([key, inner]) => [key, plain(inner, ancestors)]));
    if (value instanceof Error) {
      const { name, message, stack } = value;
      const cause = value.cause === undefined ? {} : { cause: plain(value.cause, ancestors) };
      return { type: name, message, stack, ...fields(value), ...cause };
    }
    if (Array.isArray(value)) return value.map((inner) => plain(inner, ancestors));
    return fields(value);
  } finally {
    ancestors.delete(value);
  }
}
