/**
 * /metrics on prom-client: the Metrics facade's registries, and a real server
 * (the embedded one with its dispatcher thread, with the dispatcher on the
 * API's event loop, and on PostgreSQL) scraped over HTTP after a delivery.
 */
import { afterEach, describe, expect, it } from "vitest";
import { generateMasterKey } from "../src/domain/key-box.js";
import { DeliveryMetrics } from "../src/ops/delivery-metrics.js";
import { Metrics } from "../src/ops/metrics.js";
import { accessToken, createClient, startServer } from "./support/binary.js";
import { createTestDatabase, type DialectName, dialects } from "./support/databases.js";
import { parseExposition } from "./support/exposition.js";
import { booking, until } from "./support/fixtures.js";
import { LOCAL_DELIVERY_ENV } from "./support/harness.js";
import { startReceiver } from "./support/receiver.js";

const PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8";
/** Families every scrape has whatever happened: carehooks' own and the process's default ones. */
const ALWAYS = [
  "carehooks_http_requests_total",
  "carehooks_http_request_duration_seconds",
  "carehooks_events_total",
  "carehooks_write_retries_total",
  "carehooks_queue",
  "carehooks_delivery_attempts_total",
  "carehooks_delivery_attempt_duration_seconds",
  "carehooks_dispatcher_in_flight",
  "carehooks_leases_returned_total",
  "carehooks_dispatcher_batches_total",
  "carehooks_breaker_transitions_total",
  "process_cpu_seconds_total",
  "process_resident_memory_bytes",
  "nodejs_eventloop_lag_seconds",
  "nodejs_heap_size_used_bytes",
];

describe("the Metrics registries", () => {
  it("render carehooks', the dispatcher's and the process's families once each, collecting gauges at scrape time", async () => {
    let depth = 7;
    const metrics = new Metrics(async (gauge) => gauge.set({ state: "pending" }, depth));
    metrics.delivery.attempted("succeeded", 0.02);
    metrics.httpRequests.inc({ method: "GET", route: "/x", status: "200" });
    metrics.httpDuration.observe({ route: "/x" }, 0.3);
    const text = await metrics.render();
    const families = parseExposition(text);
    expect([...families.keys()]).toEqual(expect.arrayContaining(ALWAYS));
    expect(families.get("carehooks_http_request_duration_seconds")?.type).toBe("histogram");
    expect(text).toContain('carehooks_delivery_attempts_total{outcome="succeeded"} 1\n');
    expect(text).toContain('carehooks_delivery_attempt_duration_seconds_bucket{le="0.025"} 1\n');
    expect(text).toContain('carehooks_http_requests_total{method="GET",route="/x",status="200"} 1\n');
    expect(text).toContain('carehooks_http_request_duration_seconds_bucket{le="0.25",route="/x"} 0\n');
    expect(text).toContain('carehooks_http_request_duration_seconds_bucket{le="0.5",route="/x"} 1\n');
    expect(text).toContain('carehooks_queue{state="pending"} 7\n');
    expect(text.endsWith("\n")).toBe(true);
    depth = 3;
    expect(await metrics.render()).toContain('carehooks_queue{state="pending"} 3\n');
    expect(metrics.contentType).toBe(PROMETHEUS_TEXT);
  });

  it("render the dispatcher's metrics from where it runs, in place of the unused ones", async () => {
    const metrics = new Metrics(async () => {});
    metrics.delivery.attempted("failed", 1);
    const thread = new DeliveryMetrics();
    for (let i = 0; i < 4; i++) thread.attempted("succeeded", 0.1);
    metrics.deliveryFrom(() => thread.render());
    const families = parseExposition(await metrics.render());
    expect([...families.keys()]).toEqual(expect.arrayContaining(ALWAYS));
    expect(families.get("carehooks_delivery_attempts_total")?.samples).toEqual(
      new Map([['carehooks_delivery_attempts_total{outcome="succeeded"}', 4]]),
    );
    // A thread that did not answer in time: the scrape goes on without its families.
    metrics.deliveryFrom(async () => "");
    const without = parseExposition(await metrics.render());
    expect(without.has("carehooks_delivery_attempts_total")).toBe(false);
    expect(without.has("carehooks_http_requests_total")).toBe(true);
  });

  it("render the dispatcher's counts: cumulative buckets, a duration over the last bound in +Inf alone, the in-flight gauge read when scraped", async () => {
    const delivery = new DeliveryMetrics();
    let sending = 3;
    delivery.inFlightFrom(() => sending);
    delivery.attempted("succeeded", 0.005); // on a bound: counted in that bucket
    delivery.attempted("succeeded", 0.3);
    delivery.attempted("retry", 45);
    delivery.leasesReturned(2);
    delivery.breakerChanged("degraded");
    delivery.breakerChanged("degraded");
    delivery.claimed(5);
    delivery.claimed(0);
    delivery.completed(4);
    const families = parseExposition(await delivery.render());
    const duration = families.get("carehooks_delivery_attempt_duration_seconds");
    expect(duration?.type).toBe("histogram");
    const bucket = (le: string) =>
      duration?.samples.get(`carehooks_delivery_attempt_duration_seconds_bucket{le="${le}"}`);
    expect([bucket("0.005"), bucket("0.25"), bucket("0.5"), bucket("30"), bucket("+Inf")]).toEqual([1, 1, 2, 2, 3]);
    expect(duration?.samples.get("carehooks_delivery_attempt_duration_seconds_sum")).toBeCloseTo(45.305);
    expect(duration?.samples.get("carehooks_delivery_attempt_duration_seconds_count")).toBe(3);
    expect(families.get("carehooks_delivery_attempts_total")?.samples).toEqual(
      new Map([
        ['carehooks_delivery_attempts_total{outcome="succeeded"}', 2],
        ['carehooks_delivery_attempts_total{outcome="retry"}', 1],
      ]),
    );
    expect(families.get("carehooks_dispatcher_in_flight")?.samples.get("carehooks_dispatcher_in_flight")).toBe(3);
    expect(families.get("carehooks_leases_returned_total")?.samples.get("carehooks_leases_returned_total")).toBe(2);
    expect(families.get("carehooks_dispatcher_batches_total")?.samples).toEqual(
      new Map([
        ['carehooks_dispatcher_batches_total{kind="claims"}', 2],
        ['carehooks_dispatcher_batches_total{kind="claimed"}', 5],
        ['carehooks_dispatcher_batches_total{kind="completions"}', 1],
        ['carehooks_dispatcher_batches_total{kind="completed"}', 4],
      ]),
    );
    expect(families.get("carehooks_breaker_transitions_total")?.type).toBe("counter");
    expect(
      families
        .get("carehooks_breaker_transitions_total")
        ?.samples.get('carehooks_breaker_transitions_total{state="degraded"}'),
    ).toBe(2);
    sending = 0;
    expect(await delivery.render()).toMatch(/^carehooks_dispatcher_in_flight 0$/m);
    // A label value is escaped as the format asks (none of carehooks' own needs it).
    delivery.breakerChanged('odd "state"\\\n');
    const escaped = parseExposition(await delivery.render()).get("carehooks_breaker_transitions_total")?.samples;
    expect(escaped?.get('carehooks_breaker_transitions_total{state="odd \\"state\\"\\\\\\n"}')).toBe(1);
  });

  it("keep several servers in one process apart, sharing the process's default metrics", async () => {
    const first = new Metrics(async () => {});
    const second = new Metrics(async () => {});
    first.eventsRecorded.inc({ name: "appointment.created" });
    const one = await first.render();
    const other = await second.render();
    expect(one).toContain('carehooks_events_total{name="appointment.created"} 1\n');
    expect(other).not.toContain("appointment.created");
    for (const text of [one, other]) expect(parseExposition(text).has("process_cpu_seconds_total")).toBe(true);
  });
});

const WEBHOOKS = "/notification/v1/connect/webhook/subscriptions";
const APPOINTMENTS = "/dr/v1/business/appointments";

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => {});
});

const servers: [string, DialectName, Record<string, string>][] = [
  ["embedded, the dispatcher on its own thread", "sqlite", { CAREHOOKS_DISPATCHER_THREAD: "true" }],
  ["embedded, the dispatcher on the API's event loop", "sqlite", { CAREHOOKS_DISPATCHER_THREAD: "false" }],
  ["on PostgreSQL", "postgres", {}],
];

describe.each(servers.filter(([, dialect]) => dialects().includes(dialect)))(
  "GET /metrics of a server %s",
  (_label, dialect, more) => {
    it("counts a delivery to a real receiver, with the process's metrics and no family twice", async () => {
      const database = await createTestDatabase(dialect);
      cleanups.push(() => database.drop());
      const receiver = await startReceiver();
      cleanups.push(() => receiver.close());
      const env = {
        ...LOCAL_DELIVERY_ENV,
        CAREHOOKS_DATABASE_URL: database.url,
        CAREHOOKS_DATA_DIR: database.dataDir,
        CAREHOOKS_MASTER_KEY: generateMasterKey(),
        CAREHOOKS_JWT_SECRET: generateMasterKey(),
        ...more,
      };
      const client = await createClient(env, "Metrics Clinic");
      const server = await startServer(env);
      cleanups.push(() => server.stop("SIGKILL"));
      const headers = {
        authorization: `Bearer ${await accessToken(server.url, client)}`,
        "content-type": "application/json",
      };
      const post = (path: string, body: unknown) =>
        fetch(`${server.url}${path}`, { method: "POST", headers, body: JSON.stringify(body) });
      expect((await post(WEBHOOKS, { endpoint: receiver.url, event_names: ["appointment.created"] })).status).toBe(201);
      expect((await post(APPOINTMENTS, booking)).status).toBe(201);
      await receiver.waitFor(1);

      // The attempt is counted after the receiver's answer, and the delivery leaves the in-flight gauge after that.
      const scrape = await until(
        async () => {
          const response = await fetch(`${server.url}/metrics`);
          const text = await response.text();
          const done =
            /^carehooks_delivery_attempts_total\{outcome="succeeded"\} 1$/m.test(text) &&
            /^carehooks_dispatcher_in_flight 0$/m.test(text) &&
            /^carehooks_dispatcher_batches_total\{kind="completed"\} 1$/m.test(text);
          return done && { response, text };
        },
        15_000,
        "the attempt on /metrics",
      );
      expect(scrape.response.status).toBe(200);
      expect(scrape.response.headers.get("content-type")).toBe(PROMETHEUS_TEXT);
      const families = parseExposition(scrape.text);
      expect([...families.keys()]).toEqual(expect.arrayContaining(ALWAYS));
      expect(families.get("process_cpu_seconds_total")?.samples.get("process_cpu_seconds_total")).toBeGreaterThan(0);
      expect(families.get("nodejs_eventloop_lag_seconds")?.samples.has("nodejs_eventloop_lag_seconds")).toBe(true);
      // The dispatcher's families, from whichever thread ran it (with its own thread, this thread's stay unused and
      // unrendered: the attempt counted above is the thread's).
      const duration = families.get("carehooks_delivery_attempt_duration_seconds")?.samples;
      expect(duration?.get("carehooks_delivery_attempt_duration_seconds_count")).toBe(1);
      expect(duration?.get('carehooks_delivery_attempt_duration_seconds_bucket{le="+Inf"}')).toBe(1);
      const leases = families.get("carehooks_leases_returned_total")?.samples;
      expect(leases?.get("carehooks_leases_returned_total")).toBe(0);
      // The one delivery was leased by one claim and recorded by one completion write.
      const batches = families.get("carehooks_dispatcher_batches_total")?.samples;
      expect(batches?.get('carehooks_dispatcher_batches_total{kind="claimed"}')).toBe(1);
      expect(batches?.get('carehooks_dispatcher_batches_total{kind="claims"}')).toBeGreaterThanOrEqual(1);
      expect(batches?.get('carehooks_dispatcher_batches_total{kind="completions"}')).toBe(1);
      expect(scrape.text).toContain('carehooks_events_total{name="appointment.created"} 1\n');
      expect(scrape.text).toMatch(
        /^carehooks_http_requests_total\{method="POST",route="\/dr\/v1\/business\/appointments",status="201"\} 1$/m,
      );
      expect(scrape.text).toMatch(/^carehooks_queue\{state="pending"\} 0$/m);
    });
  },
);
