/**
 * prom-client's default process and runtime metrics (CPU, memory, event-loop
 * lag, heap, garbage collection, handles), in one registry per process.
 *
 * They describe the process, not one server in it: several servers in one
 * process (as in the tests) share this registry, and each collector
 * (event-loop monitor, GC observer) is started once, with the first server.
 */
import { collectDefaultMetrics, Registry } from "prom-client";

let registry: Registry | undefined;

export function processRegistry(): Registry {
  if (!registry) {
    registry = new Registry();
    collectDefaultMetrics({ register: registry });
  }
  return registry;
}
