/** Outcomes a test records for deliveries it claimed itself. */
import { newId } from "../../src/domain/ids.js";
import type { ClaimedDelivery } from "../../src/store/queue/claim.js";
import type { Completion } from "../../src/store/queue/complete.js";

/** A 200 for `delivery`, with its attempt's detail. */
export function succeeded(delivery: ClaimedDelivery): Completion {
  return {
    deliveryId: delivery.id,
    subscriptionId: delivery.subscription_id,
    leaseToken: delivery.lease_token,
    outcome: { kind: "succeeded" },
    decidedAt: Date.now(),
    statusCode: 200,
    error: null,
    attempt: {
      id: newId("attempt"),
      delivery_id: delivery.id,
      n: delivery.attempts + 1,
      started_at: Date.now(),
      duration_ms: 3,
      request_headers: "{}",
      request_meta: null,
      response_status: 200,
      response_body: "",
      error: null,
    },
  };
}
