/** The flags every command that opens the database shares. */
import type { Command } from "commander";
import { type Config, loadConfig } from "../config/load.js";
import { flagName, SETTINGS, type SettingKey } from "../config/settings.js";
import { parseBoolean } from "../config/units.js";

export function addSettingOptions(command: Command, keys: readonly SettingKey[]): Command {
  for (const key of keys) {
    const setting = SETTINGS[key];
    const shown = setting.default === undefined || setting.default === "" ? "" : ` (default: ${setting.default})`;
    // A yes/no setting works bare (`--allow-http`) as well as with a value (`--allow-http false`).
    const value = setting.parse === parseBoolean ? "[value]" : "<value>";
    command.option(`--${flagName(setting)} ${value}`, `${setting.doc}${shown}`);
  }
  return command;
}

/** Commander's camel-cased option values → config, flags over environment. */
export function configFrom(options: Record<string, unknown>): Config {
  const flags: Partial<Record<SettingKey, string>> = {};
  for (const key of Object.keys(SETTINGS) as SettingKey[]) {
    const value = options[key];
    if (typeof value === "string") flags[key] = value;
    else if (value === true) flags[key] = "true";
  }
  return loadConfig(process.env, flags);
}

export const DATABASE_SETTINGS: readonly SettingKey[] = ["databaseUrl", "dataDir", "sqliteSynchronous"];
