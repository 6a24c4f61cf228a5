/** The delivery log: deliveries of a subscription, their attempts, resend and recover. */
import {
  type Delivery,
  type DeliveryDetail,
  type DeliveryFilters,
  type Page,
  type RecoverInput,
  type Task,
  timeParam,
} from "../models.js";
import { paginate } from "../pagination.js";
import type { CallOptions, Transport } from "../transport.js";
import { subscriptionPath, WEBHOOK_BASE } from "./webhooks.js";

export class DeliveriesResource {
  readonly #http: Transport;

  constructor(http: Transport) {
    this.#http = http;
  }

  /** One page of a subscription's deliveries, newest first; filter by status, event name and time. */
  list(subscriptionId: string, filters: DeliveryFilters = {}, options: CallOptions = {}): Promise<Page<Delivery>> {
    return this.#http.request({
      method: "GET",
      path: `${subscriptionPath(subscriptionId)}/deliveries`,
      query: { ...filters, since: timeParam(filters.since), until: timeParam(filters.until) },
      ...options,
    });
  }

  /** Every matching delivery, page after page. */
  iterate(subscriptionId: string, filters: Omit<DeliveryFilters, "cursor"> = {}): AsyncGenerator<Delivery> {
    return paginate((cursor) => this.list(subscriptionId, { ...filters, cursor }));
  }

  /** A delivery with all its attempts. */
  async get(id: string, options: CallOptions = {}): Promise<DeliveryDetail> {
    const answer = await this.#http.request<{ data: DeliveryDetail }>({ method: "GET", path: one(id), ...options });
    return answer.data;
  }

  /** Starts a new round of attempts for a delivery. */
  async resend(id: string, options: CallOptions = {}): Promise<Delivery> {
    const answer = await this.#http.request<{ data: Delivery }>({
      method: "POST",
      path: `${one(id)}/resend`,
      ...options,
    });
    return answer.data;
  }

  /**
   * Re-queues a subscription's failed and cancelled deliveries created in
   * [since, until); answers the background task (follow it with `tasks.wait`).
   */
  async recover(subscriptionId: string, input: RecoverInput, options: CallOptions = {}): Promise<Task> {
    const body: Record<string, string | number> = { since: timeParam(input.since) as string | number };
    const until = timeParam(input.until);
    if (until !== undefined) body.until = until;
    const answer = await this.#http.request<{ data: Task }>({
      method: "POST",
      path: `${subscriptionPath(subscriptionId)}/recover`,
      body,
      ...options,
    });
    return answer.data;
  }
}

function one(id: string): string {
  return `${WEBHOOK_BASE}/deliveries/${encodeURIComponent(id)}`;
}
