/** Webhook subscriptions: `/notification/v1/connect/webhook/subscriptions`. */
import type { EventName } from "../../events.js";
import type {
  CreatedWebhook,
  CreateWebhookInput,
  Delivery,
  Page,
  PageParams,
  StatusMessage,
  UpdatedWebhook,
  UpdateWebhookInput,
  Webhook,
  WebhookSecret,
} from "../models.js";
import { paginate } from "../pagination.js";
import type { CallOptions, Transport } from "../transport.js";

export const WEBHOOK_BASE = "/notification/v1/connect/webhook";
const SUBSCRIPTIONS = `${WEBHOOK_BASE}/subscriptions`;

export class WebhooksResource {
  readonly #http: Transport;

  constructor(http: Transport) {
    this.#http = http;
  }

  /** Registers an endpoint; answers its id. Retried safely with an `Idempotency-Key`. */
  create(input: CreateWebhookInput, options: CallOptions = {}): Promise<CreatedWebhook> {
    return this.#http.request({ method: "POST", path: SUBSCRIPTIONS, body: input, ...options });
  }

  /** One page of the business's subscriptions. */
  list(params: PageParams = {}, options: CallOptions = {}): Promise<Page<Webhook>> {
    return this.#http.request({ method: "GET", path: SUBSCRIPTIONS, query: { ...params }, ...options });
  }

  /** Every subscription, page after page. */
  iterate(params: Omit<PageParams, "cursor"> = {}): AsyncGenerator<Webhook> {
    return paginate((cursor) => this.list({ ...params, cursor }));
  }

  async get(id: string, options: CallOptions = {}): Promise<Webhook> {
    const answer = await this.#http.request<{ data: Webhook }>({ method: "GET", path: one(id), ...options });
    return answer.data;
  }

  /** Changes the endpoint, events or signing key. A new key overlaps with the old one unless `expire_previous_key`. */
  update(id: string, input: UpdateWebhookInput, options: CallOptions = {}): Promise<UpdatedWebhook> {
    return this.#http.request({ method: "PATCH", path: one(id), body: input, ...options });
  }

  /** Its signing key (and the replaced one while it still signs). Needs `webhooks:write`. */
  async secret(id: string, options: CallOptions = {}): Promise<WebhookSecret> {
    const answer = await this.#http.request<{ data: WebhookSecret }>({
      method: "GET",
      path: `${one(id)}/secret`,
      ...options,
    });
    return answer.data;
  }

  /** Deletes the subscription; its pending deliveries stop. */
  delete(id: string, options: CallOptions = {}): Promise<StatusMessage> {
    return this.#http.request({ method: "DELETE", path: one(id), ...options });
  }

  /** Re-enables it and resets its failure streak. */
  async enable(id: string, options: CallOptions = {}): Promise<Webhook> {
    const answer = await this.#http.request<{ data: Webhook }>({
      method: "POST",
      path: `${one(id)}/enable`,
      ...options,
    });
    return answer.data;
  }

  /** Stops deliveries to it (pending ones are cancelled). */
  async disable(id: string, options: CallOptions = {}): Promise<Webhook> {
    const answer = await this.#http.request<{ data: Webhook }>({
      method: "POST",
      path: `${one(id)}/disable`,
      ...options,
    });
    return answer.data;
  }

  /** Sends a sample event of `event_name` (default: its first event) to the endpoint; answers the delivery. */
  async test(
    id: string,
    input: { readonly event_name?: EventName } = {},
    options: CallOptions = {},
  ): Promise<Delivery> {
    const answer = await this.#http.request<{ data: Delivery }>({
      method: "POST",
      path: `${one(id)}/test`,
      body: input,
      ...options,
    });
    return answer.data;
  }
}

export function subscriptionPath(id: string): string {
  return one(id);
}

function one(id: string): string {
  return `${SUBSCRIPTIONS}/${encodeURIComponent(id)}`;
}
