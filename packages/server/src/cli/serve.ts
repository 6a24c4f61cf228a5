/** `carehooks serve`: migrate, then run the API (and, with the delivery engine, the dispatcher). */
import { Command } from "commander";
import { type Config, ConfigError } from "../config/load.js";
import { SETTINGS, type SettingKey } from "../config/settings.js";
import { buildApp } from "../http/app.js";
import { createContext, createDemoDataOnce, openMigratedDatabase, resolveSecrets } from "../runtime.js";
import { addSettingOptions, configFrom } from "./database-options.js";

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

export async function serve(config: Config): Promise<void> {
  if (config.role === "worker") {
    throw new ConfigError(
      "the worker role runs the delivery dispatcher, which this build does not include yet; use --role all or api",
    );
  }
  const secrets = resolveSecrets(config);
  const adapter = await openMigratedDatabase(config);
  let closing = false;
  try {
    const ctx = await createContext(config, adapter, secrets);
    const demo = await createDemoDataOnce(adapter);
    const app = await buildApp(ctx, {
      logger: { level: config.logLevel, redact: { paths: LOG_REDACTIONS, censor: "[redacted]" } },
    });
    const address = await app.listen({ host: config.host, port: config.port });
    app.log.info({ database: adapter.name, role: config.role }, `carehooks listening on ${address}`);
    if (demo) printDemoCredentials(address, demo);

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
      }, config.shutdownGrace);
      deadline.unref();
      await app.close();
      await adapter.close();
      clearTimeout(deadline);
      process.exit(0);
    };
    process.on("SIGTERM", () => void stop("SIGTERM"));
    process.on("SIGINT", () => void stop("SIGINT"));
  } catch (error) {
    await adapter.close();
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
