/**
 * How soon V8 optimises carehooks' hot functions.
 *
 * V8 runs a function in its interpreter and baseline tiers, checking after
 * each "interrupt budget" of bytecode whether it has become hot enough to
 * compile with its optimising compiler (a few checks, more for a longer
 * function). A fresh `serve` process spends its first second or so in those
 * slower tiers: a restart that finds a backlog (after a crash, a deploy, a
 * receiver that was down) drains it at a third of its later rate until then.
 * A smaller budget gets there sooner. The steady state does not change: what
 * is hot gets optimised either way.
 *
 * The budget is process-wide, so the API and the threads started after this
 * runs (the dispatcher's, the checkpointer's) share it. A budget given to
 * `node` itself wins: an operator's explicit flag is never overridden. It can
 * only be on node's command line (`process.execArgv`): node refuses
 * `--interrupt-budget` in NODE_OPTIONS and does not start. The
 * flag was measured on Node 20's V8 only, and V8's tiering flags change
 * between versions (one it does not know, it refuses with an error on
 * stderr), so other Node versions keep their own.
 */
import v8 from "node:v8";

const FLAG = "--interrupt-budget";
/** The Node major whose V8 has `--interrupt-budget` as measured (bench/, docs/benchmarks-history.md). */
const TUNED_NODE_MAJOR = 20;

/** Whether `arg`, one of node's own arguments, sets the interrupt budget (any spelling V8 takes). */
function setsBudget(arg: string): boolean {
  const name = (arg.split("=")[0] as string).replace(/^-{1,2}/, "--").replaceAll("_", "-");
  return name === FLAG;
}

/**
 * The flag to set for `budget` (bytes of bytecode), or undefined when V8's own
 * should stay: a budget of 0, one given to node, or a Node other than 20.
 */
export function interruptBudgetFlag(
  budget: number,
  execArgv: readonly string[],
  nodeVersion: string = process.versions.node,
): string | undefined {
  if (budget === 0) return undefined;
  if (Number(nodeVersion.split(".")[0]) !== TUNED_NODE_MAJOR) return undefined;
  if (execArgv.some(setsBudget)) return undefined;
  return `${FLAG}=${budget}`;
}

/** Applies `budget` to this process where interruptBudgetFlag says so; returns the flag set. */
export function tuneV8(budget: number, execArgv: readonly string[] = process.execArgv): string | undefined {
  const flag = interruptBudgetFlag(budget, execArgv);
  if (flag !== undefined) v8.setFlagsFromString(flag);
  return flag;
}
