/** Reading request headers the same way whether they come as a fetch `Headers` or a Node-style record. */

/** Fetch `Headers`, or a record such as Node's `IncomingMessage.headers` (any letter case). */
export type HeadersInput = Headers | Readonly<Record<string, string | readonly string[] | undefined>>;

/** Every value of the header `name` (lower-case), in order; empty when absent or blank. */
export function headerValues(headers: HeadersInput, name: string): string[] {
  const found: string[] = [];
  if (isFetchHeaders(headers)) {
    const value = headers.get(name);
    if (value !== null) found.push(value);
  } else {
    for (const key of Object.keys(headers)) {
      if (key.toLowerCase() !== name) continue;
      const value = headers[key];
      if (typeof value === "string") found.push(value);
      else if (Array.isArray(value)) found.push(...(value as readonly string[]));
    }
  }
  return found.filter((value) => value.trim() !== "");
}

function isFetchHeaders(headers: HeadersInput): headers is Headers {
  return typeof (headers as Headers).get === "function" && typeof (headers as Headers).has === "function";
}
