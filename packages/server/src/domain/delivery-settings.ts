/**
 * A webhook's own delivery settings (docs/webhooks.md, "Per-webhook delivery
 * settings"): the order its events go in, how many requests may be open to
 * it, how many it may get per second, how long an attempt may take and when
 * a failed one is tried again. Pure: returns the checked values or throws
 * INVALID_REQUEST naming the field and its bounds.
 */
import { invalidRequest } from "./errors.js";

export const ORDERINGS = ["none", "per_resource"] as const;
export type Ordering = (typeof ORDERINGS)[number];

/** The highest `rate_limit` accepted, requests per second: above it a limit would not hold anything back. */
export const MAX_RATE_LIMIT = 10_000;

/** The longest delay a webhook's own retry schedule may hold, unless the server's is longer. */
export const MAX_RETRY_DELAY_SECONDS = 24 * 60 * 60;

export interface DeliverySettingsInput {
  readonly ordering?: string | undefined;
  readonly max_in_flight?: number | null | undefined;
  readonly rate_limit?: number | null | undefined;
  /** Seconds. */
  readonly timeout?: number | null | undefined;
  /** Seconds after each failed attempt. */
  readonly retry_schedule?: readonly number[] | null | undefined;
}

/** The server's settings a webhook's may lower. */
export interface ServerDeliverySettings {
  /** CAREHOOKS_MAX_IN_FLIGHT_PER_ENDPOINT. */
  readonly maxInFlightPerEndpoint: number;
  /** CAREHOOKS_REQUEST_TIMEOUT, ms. */
  readonly requestTimeout: number;
  /** CAREHOOKS_RETRY_SCHEDULE, ms. */
  readonly retrySchedule: readonly number[];
}

/** As stored: durations in ms, the schedule as JSON. */
export interface DeliverySettings {
  ordering?: Ordering;
  max_in_flight?: number | null;
  rate_limit?: number | null;
  timeout_ms?: number | null;
  retry_schedule?: string | null;
}

/**
 * The settings given, checked; absent fields stay absent (a PATCH leaves them
 * alone), null clears one back to the server's default. A webhook may lower
 * the server's cap and timeout, not raise them, and its schedule may be no
 * longer than the server's.
 */
export function checkDeliverySettings(input: DeliverySettingsInput, server: ServerDeliverySettings): DeliverySettings {
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
      server.maxInFlightPerEndpoint,
      "the server's CAREHOOKS_MAX_IN_FLIGHT_PER_ENDPOINT",
    );
  }
  if (input.rate_limit !== undefined) {
    settings.rate_limit = bounded("rate_limit", input.rate_limit, MAX_RATE_LIMIT, "requests per second");
  }
  if (input.timeout !== undefined) {
    // Never above the server's: the lease is sized against it (CAREHOOKS_LEASE ≥ 2 × CAREHOOKS_REQUEST_TIMEOUT).
    const max = Math.floor(server.requestTimeout / 1000);
    if (max < 1 && input.timeout !== null) {
      throw invalidRequest("timeout cannot be set: the server's CAREHOOKS_REQUEST_TIMEOUT is under one second");
    }
    const seconds = bounded("timeout", input.timeout, max, "seconds; the server's CAREHOOKS_REQUEST_TIMEOUT");
    settings.timeout_ms = seconds === null ? null : seconds * 1000;
  }
  if (input.retry_schedule !== undefined) settings.retry_schedule = checkSchedule(input.retry_schedule, server);
  return settings;
}

function checkSchedule(schedule: readonly number[] | null, server: ServerDeliverySettings): string | null {
  if (schedule === null) return null;
  const longest = Math.max(MAX_RETRY_DELAY_SECONDS, Math.ceil(Math.max(0, ...server.retrySchedule) / 1000));
  if (!Array.isArray(schedule) || schedule.length > server.retrySchedule.length) {
    throw invalidRequest(
      `retry_schedule must be a list of at most ${server.retrySchedule.length} delays in seconds (the length of the server's CAREHOOKS_RETRY_SCHEDULE); [] means no retries`,
    );
  }
  schedule.forEach((seconds, i) => {
    if (!Number.isInteger(seconds) || seconds < 1 || seconds > longest) {
      throw invalidRequest(`retry_schedule[${i}] must be a whole number of seconds from 1 to ${longest}`);
    }
  });
  return JSON.stringify(schedule.map((seconds) => seconds * 1000));
}

function bounded(field: string, value: number | null, max: number, what: string): number | null {
  if (value === null) return null;
  if (!Number.isInteger(value) || value < 1 || value > max) {
    throw invalidRequest(`${field} must be a whole number from 1 to ${max} (${what}), or null for the default`);
  }
  return value;
}
