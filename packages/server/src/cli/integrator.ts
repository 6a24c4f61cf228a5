/** What every integrator command shares: `--profile` and `--json`, and an API client from the profile. */
import { type Command, Option } from "commander";
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

/** Event names from the one event flag: `--event a,b` or `--event a --event b` (`--events`, the old spelling, still works). */
export interface EventOptions {
  readonly event?: string[];
  readonly events?: string[];
}

export function withEventOption(command: Command, description: string): Command {
  const collect = (value: string, previous: string[] = []) => [...previous, ...list(value)];
  return command
    .addOption(
      new Option("--event <names>", `${description} (comma-separated, or the flag repeated)`).argParser(collect),
    )
    .addOption(new Option("--events <names>").argParser(collect).hideHelp());
}

/** The event names given, or undefined when none was. */
export function eventsOf(options: EventOptions): string[] | undefined {
  const names = [...(options.event ?? []), ...(options.events ?? [])];
  return names.length > 0 ? names : undefined;
}

/** The one event name a command takes, or undefined; several is a mistake worth saying. */
export function oneEventOf(options: EventOptions): string | undefined {
  const names = eventsOf(options);
  if (names && names.length > 1) throw new Error(`give one event name here, not ${names.length}`);
  return names?.[0];
}

export function list(value: string): string[] {
  return value
    .split(",")
    .map((item) => item.trim())
    .filter(Boolean);
}
