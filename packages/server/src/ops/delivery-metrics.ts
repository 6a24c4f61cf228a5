/**
 * The dispatcher's metrics, in a registry of their own: they are counted on
 * whichever thread runs the dispatcher (the API's, or a dispatcher thread of
 * its own) and rendered from there at scrape time.
 */
import { Counter, Gauge, Histogram, Registry } from "prom-client";

/** Latency buckets in seconds, shared by the API's and the dispatcher's histograms. */
export const SECONDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

export class DeliveryMetrics {
  readonly registry = new Registry();
  readonly attempts = new Counter({
    name: "carehooks_delivery_attempts_total",
    help: "Delivery attempts made by this process, by outcome.",
    labelNames: ["outcome"] as const,
    registers: [this.registry],
  });
  readonly attemptDuration = new Histogram({
    name: "carehooks_delivery_attempt_duration_seconds",
    help: "Time from sending to the receiver's answer.",
    buckets: SECONDS,
    registers: [this.registry],
  });
  readonly inFlight = new Gauge({
    name: "carehooks_dispatcher_in_flight",
    help: "Deliveries this process is sending now.",
    registers: [this.registry],
  });
  readonly leasesReturned = new Counter({
    name: "carehooks_leases_returned_total",
    help: "Deliveries this process returned to the queue at a heartbeat: held by a worker that stopped beating, or whose lease expired.",
    registers: [this.registry],
  });
  readonly breakerChanges = new Counter({
    name: "carehooks_breaker_transitions_total",
    help: "Subscription state changes this process wrote, by the state entered.",
    labelNames: ["state"] as const,
    registers: [this.registry],
  });

  /** The exposition text of these metrics alone. */
  render(): Promise<string> {
    return this.registry.metrics();
  }
}
