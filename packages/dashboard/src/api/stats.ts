/** `GET /stats`: queue depth, deliveries per minute and each webhook's success over the last day. */
import type { CarehooksClient } from "@carehooks/sdk/client";

export interface MinuteCount {
  /** Start of the minute, ISO-8601. */
  readonly minute: string;
  readonly succeeded: number;
  readonly failed: number;
  readonly other: number;
}

export interface WebhookStats {
  readonly subscription_id: string;
  readonly succeeded: number;
  readonly failed: number;
}

export interface Stats {
  readonly queue: { readonly pending: number; readonly in_flight: number; readonly oldest_due_seconds: number };
  readonly minutes: MinuteCount[];
  readonly webhooks: WebhookStats[];
}

export async function stats(client: CarehooksClient, hours = 3): Promise<Stats> {
  const answer = await client.request<{ data: Stats }>({
    method: "GET",
    path: "/notification/v1/connect/webhook/stats",
    query: { hours },
  });
  return answer.data;
}
