/** The scopes an API client can hold. A write scope does not imply the read scope. */
export const SCOPES = [
  "webhooks:read",
  "webhooks:write",
  "appointments:read",
  "appointments:write",
  "prescriptions:read",
  "prescriptions:write",
  "audit:read",
] as const;

export type Scope = (typeof SCOPES)[number];

export function isScope(value: string): value is Scope {
  return (SCOPES as readonly string[]).includes(value);
}

/** `all` or a comma/space separated list → scopes; throws on an unknown one. */
export function parseScopes(text: string): Scope[] {
  const items = text
    .split(/[\s,]+/)
    .map((item) => item.trim())
    .filter((item) => item !== "");
  if (items.length === 1 && items[0] === "all") return [...SCOPES];
  if (items.length === 0) throw new Error(`no scopes given; use "all" or some of ${SCOPES.join(", ")}`);
  const unknown = items.filter((item) => !isScope(item));
  if (unknown.length > 0) throw new Error(`unknown scope ${unknown.join(", ")}; known: ${SCOPES.join(", ")}`);
  return [...new Set(items)] as Scope[];
}
