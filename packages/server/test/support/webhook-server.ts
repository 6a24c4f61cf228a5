/**
 * A server with a dispatcher for the enclosing describe, and a function that
 * registers a webhook (with the given fields) to a real receiver of its own,
 * for a new tenant or a given one. Receivers and the server close after the
 * describe.
 */
import { expect } from "vitest";
import type { DialectName } from "./databases.js";
import { deliveringHarness, type Tenant } from "./harness.js";
import type { Receiver } from "./receiver.js";

export const WEBHOOKS = "/notification/v1/connect/webhook/subscriptions";

export interface Hook {
  readonly tenant: Tenant;
  readonly receiver: Receiver;
  readonly id: string;
}

export type RegisterWebhook = (body: Record<string, unknown>, tenant?: Tenant) => Promise<Hook>;

/** `event_names` defaults to the two appointment events. */
export function serverWithWebhooks(dialect: DialectName, env: Record<string, string>): RegisterWebhook {
  const run = deliveringHarness(dialect, env);
  return async (body, tenant) => {
    const receiver = await run.receiver();
    const owner = tenant ?? (await run.h.tenant());
    const created = await owner.request("POST", WEBHOOKS, {
      endpoint: receiver.url,
      event_names: ["appointment.created", "appointment.updated"],
      ...body,
    });
    expect(created.statusCode, created.body).toBe(201);
    return { tenant: owner, receiver, id: created.json().id };
  };
}
