/** The carehooks API client. */
import { AppointmentsResource } from "./resources/appointments.js";
import { DeliveriesResource } from "./resources/deliveries.js";
import { EventsResource } from "./resources/events.js";
import { PrescriptionsResource } from "./resources/prescriptions.js";
import { TasksResource } from "./resources/tasks.js";
import { WebhooksResource } from "./resources/webhooks.js";
import { TokenManager, type TokenPair } from "./token-manager.js";
import { type RequestSpec, type TokenSource, Transport } from "./transport.js";

export interface CarehooksClientOptions {
  /** The server, such as `https://carehooks.example` (no trailing path). */
  readonly baseUrl: string;
  /** With `clientSecret`: the client logs in and renews its tokens itself. Not needed with `tokens`. */
  readonly clientId?: string;
  readonly clientSecret?: string;
  /**
   * Where access tokens come from instead of the client credentials: for a
   * caller that holds a token but not the secret (the dashboard after a
   * sign-in or a portal session).
   */
  readonly tokens?: TokenSource;
  /** A `fetch` to use instead of the global one (for proxies, tests, instrumentation). */
  readonly fetch?: typeof fetch;
  /** Retries after the first attempt, for 429, 5xx and network errors. Default 3; 0 turns retries off. */
  readonly maxRetries?: number;
  /** Per attempt, in milliseconds. Default 30 000. */
  readonly timeoutMs?: number;
  /** The first retry waits about this long (then twice as long each time, with jitter). Default 500 ms. */
  readonly retryBaseDelayMs?: number;
  /** Longest computed wait between retries. Default 10 000 ms. */
  readonly retryMaxDelayMs?: number;
  /** A `Retry-After` longer than this is not waited for: the error is thrown. Default 60 000 ms. */
  readonly maxRetryAfterMs?: number;
  readonly userAgent?: string;
}

/**
 * A client of the carehooks API. It logs in with the client credentials on
 * first use and keeps the access token fresh by itself (refreshing shortly
 * before it expires, and once more on a 401), retries what is safe to retry,
 * and throws `CarehooksApiError` with the API's error `code` for error answers.
 *
 * @example
 * ```ts
 * import { CarehooksClient } from "@carehooks/sdk";
 *
 * const client = new CarehooksClient({
 *   baseUrl: "http://127.0.0.1:8080",
 *   clientId: process.env.CAREHOOKS_CLIENT_ID!,
 *   clientSecret: process.env.CAREHOOKS_CLIENT_SECRET!,
 * });
 * const { id } = await client.webhooks.create({
 *   endpoint: "https://clinic-app.example/webhooks/carehooks",
 *   event_names: ["appointment.created", "appointment.updated"],
 *   signing_key: process.env.CAREHOOKS_SIGNING_KEY,
 * });
 * for await (const webhook of client.webhooks.iterate()) console.log(webhook.id, webhook.state);
 * ```
 */
export class CarehooksClient {
  readonly webhooks: WebhooksResource;
  readonly deliveries: DeliveriesResource;
  readonly events: EventsResource;
  readonly tasks: TasksResource;
  readonly appointments: AppointmentsResource;
  readonly prescriptions: PrescriptionsResource;
  readonly #http: Transport;
  readonly #tokens: TokenManager | undefined;

  constructor(options: CarehooksClientOptions) {
    if (!options.baseUrl) throw new TypeError("baseUrl is required");
    if (!options.tokens && (!options.clientId || !options.clientSecret)) {
      throw new TypeError("clientId and clientSecret are required (or a token source)");
    }
    // Bound: a browser's fetch throws "Illegal invocation" when called as another object's method.
    const fetchImpl = options.fetch ?? globalThis.fetch?.bind(globalThis);
    if (typeof fetchImpl !== "function") throw new TypeError("no fetch: pass one in the options (Node 20 has one)");
    this.#http = new Transport({
      baseUrl: options.baseUrl,
      fetch: fetchImpl,
      timeoutMs: options.timeoutMs ?? 30_000,
      backoff: {
        maxRetries: options.maxRetries ?? 3,
        baseDelayMs: options.retryBaseDelayMs ?? 500,
        maxDelayMs: options.retryMaxDelayMs ?? 10_000,
        maxRetryAfterMs: options.maxRetryAfterMs ?? 60_000,
      },
      ...(options.userAgent ? { userAgent: options.userAgent } : {}),
    });
    this.#tokens = options.tokens
      ? undefined
      : new TokenManager(this.#http, options.clientId as string, options.clientSecret as string);
    this.#http.tokens = options.tokens ?? this.#tokens;
    this.webhooks = new WebhooksResource(this.#http);
    this.deliveries = new DeliveriesResource(this.#http);
    this.events = new EventsResource(this.#http);
    this.tasks = new TasksResource(this.#http);
    this.appointments = new AppointmentsResource(this.#http);
    this.prescriptions = new PrescriptionsResource(this.#http);
  }

  /**
   * Logs in now (otherwise the first call does): a quick check of the
   * credentials. Throws `CarehooksApiError` `UNAUTHORIZED` for bad ones.
   */
  login(options: { readonly signal?: AbortSignal } = {}): Promise<TokenPair> {
    if (!this.#tokens) return Promise.reject(new TypeError("this client has a token source, not credentials"));
    return this.#tokens.login(options.signal);
  }

  /**
   * Any other API call, with the client's token handling, retries and errors:
   * `client.request({ method: "GET", path: "/notification/v1/connect/webhook/event-types" })`.
   */
  request<T = unknown>(spec: RequestSpec): Promise<T> {
    return this.#http.request<T>(spec);
  }
}
