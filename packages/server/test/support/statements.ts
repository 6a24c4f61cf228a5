/**
 * Records the statements this process's pg clients send, to count round
 * trips. It wraps the real driver's `Client.prototype.query`: every statement
 * still runs. node-postgres sends one statement per round trip (the pools
 * carehooks opens do not pipeline), so statements sent are round trips.
 */
import pg from "pg";

export interface StatementLog {
  /** The SQL texts sent since the last take, in order; the log starts empty again. */
  take(): string[];
  /** The same, with each statement's parameters. */
  takeCalls(): SentStatement[];
  stop(): void;
}

export interface SentStatement {
  readonly text: string;
  readonly values: readonly unknown[];
}

export function recordStatements(): StatementLog {
  const original = pg.Client.prototype.query;
  let sent: SentStatement[] = [];
  pg.Client.prototype.query = function recorded(this: pg.Client, ...args: unknown[]) {
    const config = args[0] as string | { text?: string; values?: unknown[] } | undefined;
    const text = typeof config === "string" ? config : config?.text;
    const values = typeof config === "string" ? args[1] : config?.values;
    if (text !== undefined)
      sent.push({ text: text.replace(/\s+/g, " ").trim(), values: Array.isArray(values) ? values : [] });
    return (original as (...a: unknown[]) => unknown).apply(this, args);
  } as typeof original;
  const takeCalls = () => {
    const taken = sent;
    sent = [];
    return taken;
  };
  return {
    take: () => takeCalls().map((call) => call.text),
    takeCalls,
    stop() {
      pg.Client.prototype.query = original;
    },
  };
}
