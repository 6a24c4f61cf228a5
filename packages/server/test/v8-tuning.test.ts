/**
 * `serve` lowers V8's interrupt budget (cli/v8-tuning.ts) unless the setting
 * is 0, node was started with a budget of its own, or this is not Node 20.
 * What the budget does to speed is measured by bench/, not here; this holds
 * which flag is set when, and that it reaches V8.
 */
import fs from "node:fs";
import v8 from "node:v8";
import { afterAll, afterEach, describe, expect, it, vi } from "vitest";
import { interruptBudgetFlag, tuneV8 } from "../src/cli/v8-tuning.js";
import { loadConfig } from "../src/config/load.js";
import { startServer } from "./support/binary.js";
import { tempDir } from "./support/databases.js";
import { until } from "./support/fixtures.js";

const NODE_20 = "20.20.2";

afterEach(() => {
  vi.restoreAllMocks();
});

const dataDirs: string[] = [];
afterAll(() => {
  for (const dir of dataDirs) fs.rmSync(dir, { recursive: true, force: true });
});

/** The fields of `serve`'s "listening" line, from a server started with `env` and stopped again. */
async function listeningLine(env: Record<string, string>): Promise<Record<string, unknown>> {
  const dataDir = tempDir("carehooks-v8-");
  dataDirs.push(dataDir);
  const server = await startServer({ CAREHOOKS_DATA_DIR: dataDir, CAREHOOKS_LOG_LEVEL: "info", ...env });
  try {
    const line = await until(
      () =>
        server
          .output()
          .split("\n")
          .find((text) => text.includes("carehooks listening")),
      5_000,
      "serve's listening line",
    );
    return JSON.parse(line) as Record<string, unknown>;
  } finally {
    await server.stop();
  }
}

describe("V8 tuning", () => {
  it("sets the configured budget by default", () => {
    expect(loadConfig({}).v8InterruptBudget).toBe(16384);
    expect(interruptBudgetFlag(16384, [], NODE_20)).toBe("--interrupt-budget=16384");
    expect(interruptBudgetFlag(4096, ["--enable-source-maps"], NODE_20)).toBe("--interrupt-budget=4096");
  });

  it("hands the flag to V8, and nothing when there is none to set", () => {
    const set = vi.spyOn(v8, "setFlagsFromString").mockImplementation(() => undefined);
    const expected = process.versions.node.startsWith("20.") ? "--interrupt-budget=8192" : undefined;
    expect(tuneV8(8192, [])).toBe(expected);
    expect(tuneV8(0, [])).toBeUndefined();
    expect(tuneV8(8192, ["--interrupt-budget=67584"])).toBeUndefined();
    expect(set.mock.calls).toEqual(expected === undefined ? [] : [[expected]]);
  });

  it("is applied by serve, which says so in its listening line, and not when set to 0", async () => {
    const tuned = await listeningLine({});
    const expected = process.versions.node.startsWith("20.") ? "--interrupt-budget=16384" : undefined;
    expect(tuned.v8).toBe(expected);
    const untuned = await listeningLine({ CAREHOOKS_V8_INTERRUPT_BUDGET: "0" });
    expect(untuned).toHaveProperty("role", "all");
    expect(untuned).not.toHaveProperty("v8");
  }, 60_000);

  it("keeps V8's budget at 0", () => {
    expect(loadConfig({ CAREHOOKS_V8_INTERRUPT_BUDGET: "0" }).v8InterruptBudget).toBe(0);
    expect(interruptBudgetFlag(0, [], NODE_20)).toBeUndefined();
  });

  it("never overrides a budget given to node, in any spelling V8 takes", () => {
    for (const given of [
      ["--interrupt-budget=67584"],
      ["--interrupt_budget=67584"],
      ["-interrupt-budget=67584"],
      ["--cpu-prof", "--interrupt-budget=1000"],
    ]) {
      expect(interruptBudgetFlag(16384, given, NODE_20), given.join(" ")).toBeUndefined();
    }
  });

  it("is not fooled by V8's other interrupt-budget flags", () => {
    expect(interruptBudgetFlag(16384, ["--interrupt-budget-for-feedback-allocation=940"], NODE_20)).toBe(
      "--interrupt-budget=16384",
    );
  });

  it("sets nothing on a Node whose V8 was not measured with the flag", () => {
    for (const version of ["18.20.0", "22.11.0", "24.0.0"]) {
      expect(interruptBudgetFlag(16384, [], version), version).toBeUndefined();
    }
  });

  it("refuses a budget that is not a whole number of bytes, or one so small V8 would check at every call", () => {
    for (const bad of ["-1", "1.5", "lots", "1", "1023"]) {
      expect(() => loadConfig({ CAREHOOKS_V8_INTERRUPT_BUDGET: bad }), bad).toThrow(/V8_INTERRUPT_BUDGET/);
    }
    expect(loadConfig({ CAREHOOKS_V8_INTERRUPT_BUDGET: "1024" }).v8InterruptBudget).toBe(1024);
  });
});
