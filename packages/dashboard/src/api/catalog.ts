/** The event catalog (`GET /event-types`) and the dashboard's own calls the SDK has no method for. */
import type { CarehooksClient } from "@carehooks/sdk/client";

export interface EventType {
  readonly name: string;
  readonly description: string;
  readonly schema: unknown;
  readonly example: unknown;
}

export async function eventTypes(client: CarehooksClient): Promise<EventType[]> {
  const answer = await client.request<{ data: EventType[] }>({
    method: "GET",
    path: "/notification/v1/connect/webhook/event-types",
  });
  return answer.data;
}

/** A Standard Webhooks key: `whsec_` + base64 of 32 random bytes, made in the browser, never sent anywhere else. */
export function generateSigningKey(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  return `whsec_${btoa(String.fromCharCode(...bytes))}`;
}
