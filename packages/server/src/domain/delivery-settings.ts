/**
 * A webhook's own delivery settings (docs/webhooks.md, "Per-webhook delivery
 * settings"): the order its events go in, how many requests may be open to
 * it, and how many it may get per second. Pure: returns the checked values or
 * throws INVALID_REQUEST naming the field and its bounds.
 */
import { invalidRequest } from "./errors.js";

export const ORDERINGS = ["none", "per_resource"] as const;
export type Ordering = (typeof ORDERINGS)[number];

/** The highest `rate_limit` accepted, requests per second: above it a limit would not hold anything back. */
export const MAX_RATE_LIMIT = 10_000;

export interface DeliverySettingsInput {
  readonly ordering?: string | undefined;
  readonly max_in_flight?: number | null | undefined;
  readonly rate_limit?: number | null | undefined;
}

export interface DeliverySettings {
  ordering?: Ordering;
  max_in_flight?: number | null;
  rate_limit?: number | null;
}

/**
 * The settings given, checked; absent fields stay absent (a PATCH leaves them
 * alone), null clears one back to the server's default.
 * `serverCap`: CAREHOOKS_MAX_IN_FLIGHT_PER_ENDPOINT, which a webhook may lower but not raise.
 */
export function checkDeliverySettings(input: DeliverySettingsInput, serverCap: number): DeliverySettings {
  const settings: DeliverySettings = {};
  if (input.ordering !== undefined) {
    if (!(ORDERINGS as readonly string[]).includes(input.ordering)) {
      throw invalidRequest(`ordering must be one of ${ORDERINGS.join(", ")}`);
    }
    settings.ordering = input.ordering as Ordering;
  }
  if (input.max_in_flight !== undefined) {
    settings.max_in_flight = bounded(
      "max_in_flight",
      input.max_in_flight,
      serverCap,
      "the server's CAREHOOKS_MAX_IN_FLIGHT_PER_ENDPOINT",
    );
  }
  if (input.rate_limit !== undefined) {
    settings.rate_limit = bounded("rate_limit", input.rate_limit, MAX_RATE_LIMIT, "requests per second");
  }
  return settings;
}

function bounded(field: string, value: number | null, max: number, what: string): number | null {
  if (value === null) return null;
  if (!Number.isInteger(value) || value < 1 || value > max) {
    throw invalidRequest(`${field} must be a whole number from 1 to ${max} (${what}), or null for the default`);
  }
  return value;
}
