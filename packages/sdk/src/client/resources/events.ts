/** The business's events, payloads included. */
import { type EventFilters, type Page, type StoredEvent, timeParam } from "../models.js";
import { paginate } from "../pagination.js";
import type { CallOptions, Transport } from "../transport.js";
import { WEBHOOK_BASE } from "./webhooks.js";

export class EventsResource {
  readonly #http: Transport;

  constructor(http: Transport) {
    this.#http = http;
  }

  list(filters: EventFilters = {}, options: CallOptions = {}): Promise<Page<StoredEvent>> {
    return this.#http.request({
      method: "GET",
      path: `${WEBHOOK_BASE}/events`,
      query: { ...filters, since: timeParam(filters.since), until: timeParam(filters.until) },
      ...options,
    });
  }

  iterate(filters: Omit<EventFilters, "cursor"> = {}): AsyncGenerator<StoredEvent> {
    return paginate((cursor) => this.list({ ...filters, cursor }));
  }

  async get(id: string, options: CallOptions = {}): Promise<StoredEvent> {
    const answer = await this.#http.request<{ data: StoredEvent }>({
      method: "GET",
      path: `${WEBHOOK_BASE}/events/${encodeURIComponent(id)}`,
      ...options,
    });
    return answer.data;
  }
}
