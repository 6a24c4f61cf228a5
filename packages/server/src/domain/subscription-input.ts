/**
 * Validation of what an integrator sends to register or change a webhook
 * (README.md, "API overview"). Pure: returns values or throws
 * INVALID_REQUEST with a message that says what to fix.
 */
import { invalidRequest } from "./errors.js";
import { EVENT_NAMES, type EventName, isEventName } from "./event-catalog.js";
import { signingKeyProblem } from "./signing-key.js";
import { checkEndpoint, type UrlPolicy } from "./url-policy.js";

export interface EventNameFields {
  event_names?: string[] | undefined;
  scopes?: string[] | undefined;
  scope?: string | string[] | undefined;
}

/** Reads `event_names`, or its legacy aliases `scopes` and `scope`; undefined when none is given. */
export function eventNamesOf(body: EventNameFields): EventName[] | undefined {
  const given = (["event_names", "scopes", "scope"] as const).filter((field) => body[field] !== undefined);
  if (given.length > 1) throw invalidRequest(`give event_names only once (also sent as ${given.join(" and ")})`);
  const field = given[0];
  if (field === undefined) return undefined;
  const raw = body[field];
  const names = typeof raw === "string" ? raw.split(/[\s,]+/).filter(Boolean) : (raw ?? []);
  if (names.length === 0) throw invalidRequest(`${field} must name at least one event`);
  const unknown = names.filter((name) => !isEventName(name));
  if (unknown.length > 0) {
    throw invalidRequest(
      `${field} has unknown event ${unknown.slice(0, 3).join(", ")}; known: ${EVENT_NAMES.join(", ")}`,
    );
  }
  return [...new Set(names as EventName[])];
}

export interface CheckedEndpoint {
  readonly endpoint: string;
  readonly endpointKey: string;
  readonly protocol: "http" | "https";
}

export function checkEndpointInput(endpoint: string, protocol: string | undefined, policy: UrlPolicy): CheckedEndpoint {
  const checked = checkEndpoint(endpoint, policy);
  if (!checked.ok) throw invalidRequest(checked.reason);
  const scheme = checked.url.protocol === "https:" ? "https" : "http";
  if (protocol !== undefined && protocol !== scheme) {
    throw invalidRequest(`protocol "${protocol}" does not match the endpoint's scheme "${scheme}"`);
  }
  // The normalised form is what is stored and delivered to: one spelling per endpoint.
  return { endpoint: checked.normalized, endpointKey: checked.normalized, protocol: scheme };
}

export function checkSigningKey(key: string): string {
  const problem = signingKeyProblem(key);
  if (problem) throw invalidRequest(problem);
  return key;
}
