/** The sender and dispatcher of one process, wired the same way by `serve` and by the tests. */
import type { FastifyBaseLogger } from "fastify";
import type { Config } from "../config/load.js";
import type { KeyBox } from "../domain/key-box.js";
import type { UrlPolicy } from "../domain/url-policy.js";
import type { DeliveryMetrics } from "../ops/delivery-metrics.js";
import type { DialectAdapter } from "../store/dialect/adapter.js";
import type { DeliveryQueue } from "../store/queue/delivery-queue.js";
import type { Wakeup } from "../store/wakeup.js";
import { Dispatcher } from "./dispatcher.js";
import { Sender } from "./sender.js";

export interface DeliveryEngine {
  readonly sender: Sender;
  readonly dispatcher: Dispatcher;
}

/** What the engine needs; the API's context has them, and a dispatcher thread builds just these. */
export interface EngineParts {
  readonly config: Config;
  readonly adapter: DialectAdapter;
  /** Where claims and completions run, when not on `adapter` (the dispatcher thread's: the main thread). */
  readonly queue?: DeliveryQueue;
  readonly keyBox: KeyBox;
  readonly wakeup: Wakeup;
  /** The API's Metrics, or the dispatcher thread's delivery metrics alone. */
  readonly metrics: { readonly delivery: DeliveryMetrics };
  readonly urlPolicy: UrlPolicy;
}

export function createDeliveryEngine(ctx: EngineParts, log: FastifyBaseLogger): DeliveryEngine {
  const { config } = ctx;
  const sender = new Sender({
    connectTimeoutMs: config.connectTimeout,
    requestTimeoutMs: config.requestTimeout,
    policy: ctx.urlPolicy,
    egressProxy: config.egressProxy,
    keepSuccessBody: config.keepSuccessBody,
    // Per origin: several webhooks on one host share it, so it is the worker's cap, not one webhook's.
    connections: config.maxInFlight,
  });
  const dispatcher = new Dispatcher({
    adapter: ctx.adapter,
    ...(ctx.queue ? { queue: ctx.queue } : {}),
    config,
    keyBox: ctx.keyBox,
    sender,
    wakeup: ctx.wakeup,
    log,
    metrics: ctx.metrics.delivery,
  });
  return { sender, dispatcher };
}
