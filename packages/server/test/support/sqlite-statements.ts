/**
 * Records the statements this thread runs on SQLite (not a dispatcher
 * thread's), with better-sqlite3's own methods wrapped on its statements'
 * prototype: every statement still runs. Start it before the connections
 * open: the busy gate (sqlite-busy.ts) keeps the methods it finds when a
 * statement is first prepared, so those keep recording after `stop`; close
 * the harness with it.
 */
import Database from "better-sqlite3";

export interface SqliteStatementLog {
  /** The SQL texts run since the last take, in order, whitespace squeezed; the log starts empty again. */
  take(): string[];
  stop(): void;
}

type Method = "run" | "get" | "all" | "iterate";
const METHODS: readonly Method[] = ["run", "get", "all", "iterate"];
const RECORDING = Symbol("carehooks.recording");

export function recordSqliteStatements(): SqliteStatementLog {
  const probe = new Database(":memory:");
  const prototype = Object.getPrototypeOf(probe.prepare("SELECT 1")) as Record<Method, (...args: unknown[]) => unknown>;
  probe.close();
  if (RECORDING in prototype) throw new Error("SQLite statements are already being recorded");
  const originals = new Map(METHODS.map((method) => [method, prototype[method]]));
  let sent: string[] = [];
  Object.defineProperty(prototype, RECORDING, { value: true, configurable: true });
  for (const method of METHODS) {
    const original = originals.get(method) as (...args: unknown[]) => unknown;
    prototype[method] = function recorded(this: { source: string }, ...args: unknown[]) {
      sent.push(this.source.replace(/\s+/g, " ").trim());
      return original.apply(this, args);
    };
  }
  return {
    take() {
      const taken = sent;
      sent = [];
      return taken;
    },
    stop() {
      for (const [method, original] of originals) prototype[method] = original;
      delete (prototype as Record<symbol, unknown>)[RECORDING];
    },
  };
}
