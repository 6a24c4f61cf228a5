import { MessageChannel, type MessagePort } from "node:worker_threads";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { newId } from "../src/domain/ids.js";
import { lostTransaction } from "../src/store/dialect/sqlite-shared-transaction.js";
import type { ClaimResult } from "../src/store/queue/claim.js";
import type { CompletionResult } from "../src/store/queue/complete.js";
import {
  answerQueueCall,
  type DeliveryQueue,
  directQueue,
  errorOfAnswer,
  type QueueAnswer,
  type QueueCall,
} from "../src/store/queue/delivery-queue.js";
import { beat } from "../src/store/queue/workers.js";
import { booking } from "./support/fixtures.js";
import { type Harness, LOCAL_DELIVERY_ENV, startHarness } from "./support/harness.js";

/** Calls `queue` from the other end of a MessageChannel, as the dispatcher thread does: everything is cloned. */
function across(queue: DeliveryQueue): { remote: DeliveryQueue; close(): void } {
  const { port1, port2 } = new MessageChannel();
  port2.on("message", ({ id, call }: { id: number; call: QueueCall }) => {
    void answerQueueCall(queue, call).then((answer) => port2.postMessage({ id, answer }));
  });
  const waiting = new Map<number, (answer: QueueAnswer) => void>();
  let next = 0;
  port1.on("message", ({ id, answer }: { id: number; answer: QueueAnswer }) => waiting.get(id)?.(answer));
  const call = async <T>(port: MessagePort, body: QueueCall): Promise<T> => {
    const id = next++;
    const answer = await new Promise<QueueAnswer>((resolve) => {
      waiting.set(id, resolve);
      port.postMessage({ id, call: body });
    });
    if (!answer.ok) throw errorOfAnswer(answer.error);
    return answer.result as T;
  };
  return {
    remote: {
      claim: (limits) => call<ClaimResult>(port1, { op: "claim", limits }),
      complete: (completions) => call<CompletionResult>(port1, { op: "complete", completions }),
    },
    close: () => {
      port1.close();
      port2.close();
    },
  };
}

describe("claims and completions run on another thread's connection (SQLite)", () => {
  let h: Harness;
  const workerId = "wrk_queue_test";
  beforeAll(async () => {
    h = await startHarness("sqlite", LOCAL_DELIVERY_ENV);
    await beat(h.ctx.adapter, { id: workerId, host: "test", pid: 1 }, { timeoutMs: 3_600_000, leaseMs: 60_000 });
  });
  afterAll(async () => h?.close());

  it("leases, sends what it needs, and records outcomes, with the lease fencing a second write", async () => {
    const tenant = await h.tenant();
    const created = await tenant.request("POST", "/notification/v1/connect/webhook/subscriptions", {
      endpoint: "http://127.0.0.1:9/hooks",
      event_names: ["appointment.created"],
    });
    expect(created.statusCode, created.body).toBe(201);
    const hook = created.json() as { id: string };
    for (let i = 0; i < 2; i++) {
      expect((await tenant.request("POST", "/dr/v1/business/appointments", booking)).statusCode).toBe(201);
    }
    const { remote, close } = across(directQueue(h.ctx.adapter));
    try {
      const { claimed } = await remote.claim({
        limit: 10,
        perEndpoint: 5,
        leaseMs: 60_000,
        workerId,
        credit: new Map(),
      });
      expect(claimed.map((d) => d.subscription_id)).toEqual([hook.id, hook.id]);
      expect(JSON.parse(claimed[0]?.payload ?? "{}")).toMatchObject({ event: "appointment.created" });
      // The webhook crosses once: after the clone its deliveries still share one object.
      expect(claimed[0]?.webhook).toBe(claimed[1]?.webhook);
      expect(claimed[0]?.webhook).toMatchObject({ id: hook.id, endpoint: "http://127.0.0.1:9/hooks", state: "active" });
      const now = Date.now();
      const completions = claimed.map((d, i) => ({
        deliveryId: d.id,
        subscriptionId: d.subscription_id,
        leaseToken: d.lease_token,
        outcome: { kind: "succeeded" } as const,
        decidedAt: now,
        statusCode: 200,
        error: null,
        attempt: {
          id: newId("attempt", now + i),
          delivery_id: d.id,
          n: 1,
          started_at: now,
          duration_ms: 3,
          request_headers: "{}",
          request_meta: null,
          response_status: 200,
          response_body: null,
          error: null,
        },
      }));
      const written = await remote.complete(completions);
      expect([...written.moved].sort()).toEqual(claimed.map((d) => d.id).sort());
      // Written again (a retried flush): the leases are gone, nothing moves twice.
      expect((await remote.complete(completions)).moved.size).toBe(0);
      const rows = await h.ctx.db
        .selectFrom("delivery")
        .select("status")
        .where("subscription_id", "=", hook.id)
        .execute();
      expect(rows.map((r) => r.status)).toEqual(["succeeded", "succeeded"]);
    } finally {
      close();
    }
  });

  it("hands back a failure with its code, so the dispatcher still tells an unavailable database", async () => {
    const busy = Object.assign(new Error("database is locked"), { code: "SQLITE_BUSY" });
    const failing: DeliveryQueue = {
      claim: () => Promise.reject(busy),
      complete: () => Promise.reject(new Error("no such table: attempt")),
    };
    const { remote, close } = across(failing);
    try {
      const claimError = await remote.claim({ limit: 1, perEndpoint: 1, leaseMs: 1, workerId }).catch((e) => e);
      expect(claimError).toMatchObject({ message: "database is locked", code: "SQLITE_BUSY" });
      expect(h.ctx.adapter.isUnavailable(claimError)).toBe(true);
      // A completion lost with a shared transaction that another member's failure rolled back.
      const rolledBack = across({ ...failing, claim: () => Promise.reject(lostTransaction()) });
      const lost = await rolledBack.remote.claim({ limit: 1, perEndpoint: 1, leaseMs: 1, workerId }).catch((e) => e);
      rolledBack.close();
      expect(lost.code).toBe("SQLITE_ABORT_ROLLBACK");
      expect(h.ctx.adapter.isUnavailable(lost)).toBe(true);
      const completeError = await remote.complete([]).catch((e) => e);
      expect(completeError.message).toBe("no such table: attempt");
      expect(h.ctx.adapter.isUnavailable(completeError)).toBe(false);
    } finally {
      close();
    }
  });
});
