/**
 * What a worker thread's uncaught error becomes on the thread that started it.
 * Node copies an error of a class it does not know (better-sqlite3's
 * `SqliteError`) as a plain object of its own enumerable properties: it
 * arrives as `{ code: "SQLITE_NOTADB" }`, neither an Error nor with a message.
 */
export function threadError(value: unknown, thread: string): Error {
  if (value instanceof Error && value.message !== "") return value;
  const { message, code } = (value ?? {}) as { message?: unknown; code?: unknown };
  const text =
    typeof message === "string" && message !== "" ? message : typeof code === "string" ? code : String(value);
  return Object.assign(new Error(`${thread} failed: ${text}`), typeof code === "string" ? { code } : {});
}
