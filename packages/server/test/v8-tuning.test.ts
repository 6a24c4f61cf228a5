/**
 * `serve` lowers V8's interrupt budget (cli/v8-tuning.ts) unless the setting
 * is 0 or node was started with a budget of its own. What the budget does to
 * speed is measured by bench/, not here; this holds which flag is set when.
 */
import { describe, expect, it } from "vitest";
import { interruptBudgetFlag } from "../src/cli/v8-tuning.js";
import { loadConfig } from "../src/config/load.js";

describe("V8 tuning", () => {
  it("sets the configured budget by default", () => {
    expect(loadConfig({}).v8InterruptBudget).toBe(16384);
    expect(interruptBudgetFlag(16384, [])).toBe("--interrupt-budget=16384");
    expect(interruptBudgetFlag(4096, ["--enable-source-maps"])).toBe("--interrupt-budget=4096");
  });

  it("keeps Node's budget at 0", () => {
    expect(loadConfig({ CAREHOOKS_V8_INTERRUPT_BUDGET: "0" }).v8InterruptBudget).toBe(0);
    expect(interruptBudgetFlag(0, [])).toBeUndefined();
  });

  it("never overrides a budget given to node, in either spelling", () => {
    for (const given of [
      ["--interrupt-budget=67584"],
      ["--interrupt_budget=67584"],
      ["--interrupt-budget", "67584"],
      ["--cpu-prof", "--interrupt-budget=1000"],
    ]) {
      expect(interruptBudgetFlag(16384, given), given.join(" ")).toBeUndefined();
    }
  });

  it("is not fooled by V8's other interrupt-budget flags", () => {
    expect(interruptBudgetFlag(16384, ["--interrupt-budget-for-feedback-allocation=940"])).toBe(
      "--interrupt-budget=16384",
    );
  });

  it("refuses a budget that is not a whole number of bytes", () => {
    for (const bad of ["-1", "1.5", "lots"]) {
      expect(() => loadConfig({ CAREHOOKS_V8_INTERRUPT_BUDGET: bad }), bad).toThrow(/V8_INTERRUPT_BUDGET/);
    }
  });
});
