/**
 * How soon V8 optimises carehooks' hot functions.
 *
 * V8 runs a function in its interpreter and baseline tiers until the function
 * has used up an "interrupt budget" of bytecode, and only then considers
 * compiling it with its optimising compiler. A fresh `serve` process spends
 * its first second or so in those slower tiers: a restart that finds a backlog
 * (after a crash, a deploy, a receiver that was down) drains it at a third of
 * its later rate until then. A smaller budget gets there sooner. The steady
 * state does not change: what is hot gets optimised either way.
 *
 * The budget is process-wide, so the API and the dispatcher thread (created
 * after this runs) share it. A `--interrupt-budget` given to `node` itself
 * wins: an operator's explicit flag is never overridden.
 */
import v8 from "node:v8";

const FLAG = "--interrupt-budget";

/** The flag to set for `budget` (bytes of bytecode), or undefined when V8's own should stay. */
export function interruptBudgetFlag(budget: number, execArgv: readonly string[]): string | undefined {
  if (budget === 0) return undefined;
  // V8 reads `--interrupt_budget` as the same flag.
  const given = execArgv.some((arg) => {
    const name = (arg.split("=")[0] as string).replaceAll("_", "-");
    return name === FLAG;
  });
  if (given) return undefined;
  return `${FLAG}=${budget}`;
}

/** Applies `budget` to this process unless it is 0 or node was given one; returns the flag set. */
export function tuneV8(budget: number, execArgv: readonly string[] = process.execArgv): string | undefined {
  const flag = interruptBudgetFlag(budget, execArgv);
  if (flag !== undefined) v8.setFlagsFromString(flag);
  return flag;
}
