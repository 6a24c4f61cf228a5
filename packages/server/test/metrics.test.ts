import { describe, expect, it } from "vitest";
import { Counter, Gauge, Histogram, Metrics } from "../src/ops/metrics.js";

describe("metrics", () => {
  it("renders labels sorted by name whatever order an observation gives them in, escaped", () => {
    const counter = new Counter("requests_total", "Requests.", ["status", "method"]);
    counter.inc({ status: "200", method: "GET" });
    counter.inc({ method: "GET", status: "200" }, 2);
    counter.inc({ method: 'P"O\\S\nT', status: "500" });
    expect(counter.render().split("\n")).toEqual([
      "# HELP requests_total Requests.",
      "# TYPE requests_total counter",
      'requests_total{method="GET",status="200"} 3',
      'requests_total{method="P\\"O\\\\S\\nT",status="500"} 1',
    ]);
  });

  it("keeps series apart that share a value on one label", () => {
    const counter = new Counter("pairs_total", "Pairs.", ["a", "b"]);
    counter.inc({ a: "x", b: "1" });
    counter.inc({ a: "x", b: "2" });
    counter.inc({ a: "y", b: "1" });
    counter.inc({ a: "x", b: "1" });
    expect(counter.render()).toContain(
      'pairs_total{a="x",b="1"} 2\npairs_total{a="x",b="2"} 1\npairs_total{a="y",b="1"} 1',
    );
  });

  it("renders an unlabelled gauge and counter without braces", () => {
    const gauge = new Gauge("in_flight", "In flight.");
    gauge.set(3);
    gauge.set(5);
    expect(gauge.render()).toBe("# HELP in_flight In flight.\n# TYPE in_flight gauge\nin_flight 5");
    const counter = new Counter("total", "Total.");
    counter.inc();
    expect(counter.render()).toContain("\ntotal 1");
  });

  it("renders histogram buckets cumulatively, with +Inf, sum and count", () => {
    const histogram = new Histogram("latency_seconds", "Latency.", [0.1, 1, 10], ["route"]);
    for (const value of [0.05, 0.1, 0.5, 5, 50]) histogram.observe(value, { route: "/a" });
    histogram.observe(2, { route: "/b" });
    expect(histogram.render().split("\n")).toEqual([
      "# HELP latency_seconds Latency.",
      "# TYPE latency_seconds histogram",
      'latency_seconds_bucket{route="/a",le="0.1"} 2',
      'latency_seconds_bucket{route="/a",le="1"} 3',
      'latency_seconds_bucket{route="/a",le="10"} 4',
      'latency_seconds_bucket{route="/a",le="+Inf"} 5',
      'latency_seconds_sum{route="/a"} 55.65',
      'latency_seconds_count{route="/a"} 5',
      'latency_seconds_bucket{route="/b",le="0.1"} 0',
      'latency_seconds_bucket{route="/b",le="1"} 0',
      'latency_seconds_bucket{route="/b",le="10"} 1',
      'latency_seconds_bucket{route="/b",le="+Inf"} 1',
      'latency_seconds_sum{route="/b"} 2',
      'latency_seconds_count{route="/b"} 1',
    ]);
  });

  it("renders the registry, collecting gauges at scrape time", async () => {
    const metrics = new Metrics(async (gauge) => gauge.set(7, { state: "pending" }));
    metrics.attempts.inc({ outcome: "succeeded" });
    metrics.attemptDuration.observe(0.02);
    metrics.httpRequests.inc({ route: "/x", status: "200", method: "GET" });
    const text = await metrics.render();
    expect(text).toContain('carehooks_delivery_attempts_total{outcome="succeeded"} 1\n');
    expect(text).toContain('carehooks_delivery_attempt_duration_seconds_bucket{le="0.025"} 1\n');
    expect(text).toContain('carehooks_http_requests_total{method="GET",route="/x",status="200"} 1\n');
    expect(text).toContain('carehooks_queue{state="pending"} 7\n');
    expect(text.endsWith("\n")).toBe(true);
  });
});
