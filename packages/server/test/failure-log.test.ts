import type { FastifyBaseLogger } from "fastify";
import { describe, expect, it } from "vitest";
import { FailureLog } from "../src/delivery/failure-log.js";

/** A log sink that keeps what was written at warn level. */
function sink() {
  const lines: { fields: Record<string, unknown>; message: string }[] = [];
  const log = { warn: (fields: Record<string, unknown>, message: string) => lines.push({ fields, message }) };
  return { lines, log: log as unknown as FastifyBaseLogger };
}

const attempt = (subscriptionId: string, n: number) => ({
  subscriptionId,
  deliveryId: `dlv_${n}`,
  attempt: n,
  status: 503,
  error: null,
  outcome: "retry",
});

describe("failed attempts in the log", () => {
  it("logs one line per webhook per interval, counting the ones it held back", () => {
    const { lines, log } = sink();
    const failures = new FailureLog(log, 10_000);
    for (let n = 1; n <= 5; n++) failures.failed(attempt("wh_a", n), 1_000 + n);
    failures.failed(attempt("wh_b", 1), 1_010);
    expect(lines.map((line) => line.fields.subscription)).toEqual(["wh_a", "wh_b"]);
    failures.failed(attempt("wh_a", 6), 11_002);
    expect(lines).toHaveLength(3);
    expect(lines[2]?.fields).toMatchObject({ subscription: "wh_a", attempt: 6, status: 503, notLogged: 4 });
    expect(lines[2]?.message).toMatch(/and 4 more for this webhook/);
  });
});
