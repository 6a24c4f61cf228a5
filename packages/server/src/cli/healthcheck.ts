import { Command } from "commander";
import { loadConfig } from "../config/load.js";

/** For container probes: exit 0 when the server answers its health check, 1 otherwise. */
export function healthcheckCommand(): Command {
  return new Command("healthcheck")
    .description("Exit 0 when the server on HOST:PORT is healthy (for container probes)")
    .option("--url <url>", "server base URL (default: http://CAREHOOKS_HOST:CAREHOOKS_PORT)")
    .option("--ready", "check /readyz (database reachable) instead of /healthz")
    .option("--timeout <ms>", "give up after this many milliseconds", "3000")
    .action(async (options: { url?: string; ready?: boolean; timeout: string }) => {
      const config = loadConfig();
      const host = config.host === "0.0.0.0" || config.host === "::" ? "127.0.0.1" : config.host;
      const base = options.url ?? `http://${host.includes(":") ? `[${host}]` : host}:${config.port}`;
      const url = new URL(options.ready ? "/readyz" : "/healthz", base);
      try {
        const response = await fetch(url, { signal: AbortSignal.timeout(Number(options.timeout)) });
        process.stdout.write(`${url.href} ${response.status}\n`);
        process.exitCode = response.ok ? 0 : 1;
      } catch (error) {
        process.stderr.write(`${url.href} unreachable: ${(error as Error).message}\n`);
        process.exitCode = 1;
      }
    });
}
