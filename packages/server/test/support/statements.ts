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
  stop(): void;
}

export function recordStatements(): StatementLog {
  const original = pg.Client.prototype.query;
  let sent: string[] = [];
  pg.Client.prototype.query = function recorded(this: pg.Client, ...args: unknown[]) {
    const config = args[0] as string | { text?: string } | undefined;
    const text = typeof config === "string" ? config : config?.text;
    if (text !== undefined) sent.push(text.replace(/\s+/g, " ").trim());
    return (original as (...a: unknown[]) => unknown).apply(this, args);
  } as typeof original;
  return {
    take() {
      const taken = sent;
      sent = [];
      return taken;
    },
    stop() {
      pg.Client.prototype.query = original;
    },
  };
}
