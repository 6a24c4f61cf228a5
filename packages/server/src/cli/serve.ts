/** `carehooks serve`: migrate, then run the API (and, with the delivery engine, the dispatcher). */
import { Command } from "commander";
import type { Config } from "../config/load.js";
import { SETTINGS, type SettingKey } from "../config/settings.js";
import { createDeliveryEngine } from "../delivery/engine.js";
import { DispatcherThread } from "../delivery/thread.js";
import { buildApp } from "../http/app.js";
import { startRetention } from "../ops/retention.js";
import { createContext, createDemoDataOnce, openMigratedDatabase, resolveSecrets, resumeTasks } from "../runtime.js";
import { lockDatabase } from "../store/dialect/sqlite-lock.js";
import { dialectOf } from "../store/open.js";
import { directQueue } from "../store/queue/delivery-queue.js";
import { returnAllLeases } from "../store/queue/workers.js";
import { addSettingOptions, configFrom } from "./database-options.js";
import { tuneV8 } from "./v8-tuning.js";

/** Time after the grace period to release leases and close connections. */
const SHUTDOWN_MARGIN_MS = 3000;
const LOG_REDACTIONS = ["req.headers.authorization", "req.headers.auth", "req.headers.cookie"];

function printDemoCredentials(url: string, demo: { businessId: string; clientId: string; clientSecret: string }): void {
  process.stdout.write(
    [
      "",
      '  First start: created the business "Demo Clinic" and an API client with every scope.',
      "  These credentials are shown once; store them now.",
      "",
      `    business_id    ${demo.businessId}`,
      `    client_id      ${demo.clientId}`,
      `    client_secret  ${demo.clientSecret}`,
      "",
      "  Log in:",
      `    curl -s ${url}/connect-auth/v1/account/login -H 'content-type: application/json' \\`,
      `      -d '{"client_id":"${demo.clientId}","client_secret":"${demo.clientSecret}"}'`,
      "",
      "",
    ].join("\n"),
  );
}

/** Nothing written can be promised durable any more, or the dispatcher is gone: stop, so the supervisor restarts. */
function exitOnFailure(error: Error): never {
  process.stderr.write(`carehooks: ${error.message}; exiting\n`);
  process.exit(1);
}

/** The SQLite file `serve` will hold alone, if the database is one. */
function sqliteFileOf(url: string): string | undefined {
  if (dialectOf(url) !== "sqlite") return undefined;
  const file = url.slice("sqlite:".length);
  return file === ":memory:" ? undefined : file;
}

export async function serve(config: Config): Promise<void> {
  // First: every function that gets hot from here on, on this thread and the dispatcher's, gets the budget.
  const v8Tuning = tuneV8(config.v8InterruptBudget);
  const secrets = resolveSecrets(config);
  const sqliteFile = sqliteFileOf(config.databaseUrl);
  const lock = sqliteFile === undefined ? undefined : lockDatabase(sqliteFile);
  const adapter = await openMigratedDatabase(config, {
    onStorageFailure: exitOnFailure,
    sqliteCheckpoints: "background",
    // A worker writes only leases and outcomes: losing the last of them to a crash sends a delivery again.
    postgresAsynchronousCommits: config.role === "worker",
  }).catch((error) => {
    lock?.release();
    throw error;
  });
  let closing = false;
  try {
    // Held alone, so every lease in the file is a dead process's: its deliveries flow again now.
    const returned = lock ? await returnAllLeases(adapter) : 0;
    const ctx = await createContext(config, adapter, secrets);
    const demo = config.role === "worker" ? undefined : await createDemoDataOnce(adapter);
    const app = await buildApp(ctx, {
      logger: {
        level: config.logLevel,
        redact: { paths: LOG_REDACTIONS, censor: "[redacted]" },
        // Readable lines for a person at a terminal; JSON lines for everything else (log collectors, tests).
        ...(process.stdout.isTTY && !process.env.CI
          ? {
              transport: {
                target: "pino-pretty",
                options: { translateTime: "SYS:HH:MM:ss.l", ignore: "pid,hostname" },
              },
            }
          : {}),
      },
      routes: config.role === "worker" ? "ops" : "all",
    });
    // The embedded database's dispatcher gets a thread of its own; an api process sends nothing.
    const threadShares = config.role !== "api" && config.dispatcherThread ? adapter.shared : undefined;
    const engine = config.role === "api" || threadShares ? undefined : createDeliveryEngine(ctx, app.log);
    const dispatcher = threadShares
      ? new DispatcherThread({
          config,
          masterKey: secrets.masterKey,
          shared: threadShares,
          queue: directQueue(ctx.adapter),
          wakeup: ctx.wakeup,
          metrics: ctx.metrics,
          log: app.log,
          onFatal: exitOnFailure,
        })
      : engine?.dispatcher;
    const address = await app.listen({ host: config.host, port: config.port });
    dispatcher?.start();
    if (config.role !== "worker") await resumeTasks(ctx, app.log);
    const stopRetention = config.role === "worker" ? undefined : startRetention(adapter.db, app.log);
    app.log.info(
      { database: adapter.name, role: config.role, ...(v8Tuning === undefined ? {} : { v8: v8Tuning }) },
      `carehooks listening on ${address}`,
    );
    if (returned > 0) app.log.warn({ returned }, "returned deliveries left in flight by a process that stopped");
    if (demo) printDemoCredentials(address, demo);
    else if (adapter.name === "sqlite" && config.role === "all") {
      // The demo client's secret was shown once, at the first start: say how to get a client again.
      app.log.info(
        'API credentials: the first start printed the demo client\'s; make another with `npx carehooks clients create --business "Demo Clinic" --scopes all`',
      );
    }

    const stop = async (signal: string) => {
      if (closing) {
        app.log.warn(`${signal} again: exiting now`);
        process.exit(1);
      }
      closing = true;
      app.log.info(`${signal}: shutting down (grace ${config.shutdownGrace} ms)`);
      const deadline = setTimeout(() => {
        app.log.error("shutdown grace period over: exiting with work unfinished");
        process.exit(1);
      }, config.shutdownGrace + SHUTDOWN_MARGIN_MS);
      deadline.unref();
      // A client that stalls mid-request must not hold the exit past the grace period.
      const cutoff = setTimeout(() => app.server.closeAllConnections(), Math.max(0, config.shutdownGrace - 500));
      cutoff.unref();
      stopRetention?.();
      // In-flight attempts get the grace period; what is left after it is released for other workers.
      await Promise.all([app.close(), dispatcher?.stop(config.shutdownGrace)]);
      await engine?.sender.close();
      await ctx.wakeup.close();
      await adapter.close();
      lock?.release();
      clearTimeout(deadline);
      process.exit(0);
    };
    process.on("SIGTERM", () => void stop("SIGTERM"));
    process.on("SIGINT", () => void stop("SIGINT"));
  } catch (error) {
    await adapter.close();
    lock?.release();
    throw error;
  }
}

export function serveCommand(): Command {
  const command = new Command("serve").description(
    "Run carehooks (API and dispatcher; SQLite in ./data unless CAREHOOKS_DATABASE_URL says otherwise)",
  );
  addSettingOptions(command, Object.keys(SETTINGS) as SettingKey[]);
  return command.action(async (options: Record<string, unknown>) => {
    await serve(configFrom(options));
  });
}
