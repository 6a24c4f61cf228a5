/**
 * What a worker thread's uncaught error becomes on the thread that started it.
 * Node copies an error of a class it does not know (better-sqlite3's
 * `SqliteError`) as a plain object of its own enumerable properties: it
 * arrives as `{ code: "SQLITE_NOTADB" }`, neither an Error nor with a message.
 */
import { inspect } from "node:util";

export function threadError(value: unknown, thread: string): Error {
  if (value instanceof Error && value.message !== "") return value;
  const { message, code } = (value ?? {}) as { message?: unknown; code?: unknown };
  const text =
    typeof message === "string" && message !== ""
      ? message
      : typeof code === "string" || typeof code === "number"
        ? String(code)
        : inspect(value, { depth: 2, breakLength: Number.POSITIVE_INFINITY });
  return Object.assign(new Error(`${thread} failed: ${text}`, { cause: value }), code === undefined ? {} : { code });
}
