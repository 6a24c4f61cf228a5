/**
 * The dispatcher thread's entry point (see thread.ts): its own SQLite
 * connection, counting commits with the API's, and the same engine as the
 * in-process dispatcher.
 */
import { parentPort, workerData } from "node:worker_threads";
import type { FastifyBaseLogger } from "fastify";
import { urlPolicyOf } from "../config/url-policy.js";
import { KeyBox } from "../domain/key-box.js";
import { DeliveryMetrics } from "../ops/delivery-metrics.js";
import { openDatabase } from "../store/open.js";
import { type DeliveryQueue, errorOfAnswer, type QueueAnswer, type QueueCall } from "../store/queue/delivery-queue.js";
import { LocalWakeup } from "../store/wakeup.js";
import { createDeliveryEngine } from "./engine.js";
import { plain } from "./log-fields.js";
import type { FromThread, LogLevel, ThreadData, ToThread } from "./thread.js";

const LEVELS: Record<LogLevel | "silent", number> = {
  trace: 10,
  debug: 20,
  info: 30,
  warn: 40,
  error: 50,
  fatal: 60,
  silent: Number.POSITIVE_INFINITY,
};

if (!parentPort) throw new Error("thread-main.js runs as the dispatcher's worker thread");
const port = parentPort;
const post = (message: FromThread) => port.postMessage(message);
const { config, masterKey, shared } = workerData as ThreadData;

/** A logger whose lines the main thread's logger writes. */
function threadLogger(bindings: Record<string, unknown>): FastifyBaseLogger {
  const threshold = LEVELS[config.logLevel as LogLevel | "silent"] ?? LEVELS.info;
  const at =
    (level: LogLevel) =>
    (first?: unknown, second?: unknown): void => {
      if (LEVELS[level] < threshold) return;
      const [fields, message] = typeof first === "string" ? [{}, first] : [first ?? {}, second];
      post({
        type: "log",
        level,
        fields: { ...bindings, ...(plain(fields) as Record<string, unknown>) },
        message: typeof message === "string" ? message : undefined,
      });
    };
  return {
    level: config.logLevel,
    fatal: at("fatal"),
    error: at("error"),
    warn: at("warn"),
    info: at("info"),
    debug: at("debug"),
    trace: at("trace"),
    silent: () => undefined,
    child: (more: Record<string, unknown>) => threadLogger({ ...bindings, ...more }),
  } as unknown as FastifyBaseLogger;
}

const log = threadLogger({ thread: "dispatcher" });
const adapter = openDatabase(config.databaseUrl, {
  sqliteSynchronous: config.sqliteSynchronous,
  sqliteCheckpoints: "background",
  poolSize: config.databasePoolSize,
  shared,
  // What this connection writes (heartbeats, breaker changes, releases, operational events) need not be on
  // disk before the thread goes on; what it reads must be (other connections'). Claims and outcomes are
  // written on the main thread's connection, in its relaxed queue transactions: the claims and outcomes do not wait
  // for their own commits either (an API answer after them still does).
  sqliteWaitForOwnCommits: false,
  onStorageFailure: (error) => post({ type: "fatal", message: error.message }),
});
/** Claims and completions, run by the main thread on its connection: this thread's loop only sends. */
const waiting = new Map<number, (answer: QueueAnswer) => void>();
let nextCall = 0;
function onMain(call: QueueCall): Promise<QueueAnswer> {
  const id = nextCall++;
  return new Promise((resolve) => {
    waiting.set(id, resolve);
    post({ type: "queue", id, call });
  });
}
function resultOf<T>(answer: QueueAnswer): T {
  if (!answer.ok) throw errorOfAnswer(answer.error);
  return answer.result as T;
}
const queue: DeliveryQueue = {
  claim: async (limits) => resultOf(await onMain({ op: "claim", limits })),
  complete: async (completions) => resultOf(await onMain({ op: "complete", completions })),
};

const wakeup = new LocalWakeup();
// No default metrics: process_* are process-wide, on the main thread's /metrics; a thread-labelled copy doubles sums.
const metrics = new DeliveryMetrics();
const { sender, dispatcher } = createDeliveryEngine(
  {
    config,
    adapter,
    queue,
    keyBox: new KeyBox(masterKey),
    wakeup,
    metrics: { delivery: metrics },
    urlPolicy: urlPolicyOf(config),
  },
  log,
);

port.on("message", (message: ToThread) => {
  switch (message.type) {
    case "wake":
      wakeup.deliver();
      return;
    case "queue":
      waiting.get(message.id)?.(message.answer);
      waiting.delete(message.id);
      return;
    case "metrics":
      void metrics.render().then((text) => post({ type: "metrics", id: message.id, text }));
      return;
    case "stop":
      void stop(message.graceMs);
      return;
  }
});

async function stop(graceMs: number): Promise<void> {
  await dispatcher.stop(graceMs);
  await sender.close();
  await wakeup.close();
  await adapter.close();
  // With nothing left to listen to, the thread exits: what the main thread waits for.
  port.close();
}

dispatcher.start();
