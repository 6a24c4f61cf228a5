/** What every integrator command shares: `--profile` and `--json`, and an API client from the profile. */
import type { Command } from "commander";
import { Api } from "./api.js";
import { loadProfile } from "./profile.js";

export interface IntegratorOptions {
  readonly profile: string;
  readonly json?: boolean;
}

export function withProfile(command: Command): Command {
  return command
    .option("--profile <name>", "profile stored by carehooks login", "default")
    .option("--json", "print JSON for scripts");
}

export function apiFor(options: IntegratorOptions): Api {
  return new Api(loadProfile(options.profile));
}

export const WEBHOOK_API = "/notification/v1/connect/webhook";

export function list(value: string): string[] {
  return value
    .split(",")
    .map((item) => item.trim())
    .filter(Boolean);
}
