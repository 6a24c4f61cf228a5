/** The sender and dispatcher of one process, wired the same way by `serve` and by the tests. */
import type { FastifyBaseLogger } from "fastify";
import type { AppContext } from "../http/context.js";
import { Dispatcher } from "./dispatcher.js";
import { Sender } from "./sender.js";

export interface DeliveryEngine {
  readonly sender: Sender;
  readonly dispatcher: Dispatcher;
}

/** What the engine needs of the app context; a dispatcher thread builds just these. */
export type EngineParts = Pick<AppContext, "config" | "adapter" | "keyBox" | "wakeup" | "metrics" | "urlPolicy">;

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
    config,
    keyBox: ctx.keyBox,
    sender,
    wakeup: ctx.wakeup,
    log,
    metrics: ctx.metrics,
  });
  return { sender, dispatcher };
}
