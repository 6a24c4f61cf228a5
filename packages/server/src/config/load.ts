import path from "node:path";
import { envName, SETTINGS, type SettingKey, type Settings } from "./settings.js";

export const MASTER_KEY_PATTERN = /^[0-9a-fA-F]{64}$/;
export const MIN_JWT_SECRET_LENGTH = 32;

export class ConfigError extends Error {
  override name = "ConfigError";
}

export interface Config extends Settings {
  /** Always set after loading: the default is derived from the data dir. */
  databaseUrl: string;
}

/**
 * Reads every setting from flags (already keyed by setting), then the
 * environment, then the default. Throws a ConfigError naming the variable
 * for the first value that does not parse.
 */
export function loadConfig(
  env: NodeJS.ProcessEnv = process.env,
  flags: Partial<Record<SettingKey, string>> = {},
): Config {
  const values: Record<string, unknown> = {};
  for (const [key, setting] of Object.entries(SETTINGS) as [SettingKey, (typeof SETTINGS)[SettingKey]][]) {
    const raw = flags[key] ?? env[envName(setting)] ?? setting.default;
    if (raw === undefined) {
      values[key] = undefined;
      continue;
    }
    try {
      values[key] = setting.parse(raw);
    } catch (error) {
      throw new ConfigError(`${envName(setting)}: ${(error as Error).message}`);
    }
  }
  const settings = values as Settings;
  const config: Config = {
    ...settings,
    databaseUrl: settings.databaseUrl ?? `sqlite:${path.join(settings.dataDir, "carehooks.db")}`,
  };
  checkConsistency(config);
  return config;
}

function checkConsistency(config: Config): void {
  if (config.lease < 2 * config.requestTimeout) {
    throw new ConfigError(
      `CAREHOOKS_LEASE (${config.lease} ms) must be at least twice CAREHOOKS_REQUEST_TIMEOUT (${config.requestTimeout} ms)`,
    );
  }
  if (config.workerTimeout < 500) {
    throw new ConfigError("CAREHOOKS_WORKER_TIMEOUT must be at least 500ms (workers beat every fifth of it)");
  }
  if (config.completionFlush > 1000) {
    throw new ConfigError("CAREHOOKS_COMPLETION_FLUSH must be at most 1s");
  }
  if (config.cacheStaleness < 10) {
    throw new ConfigError("CAREHOOKS_CACHE_STALENESS must be at least 10ms");
  }
  if (config.connectTimeout > config.requestTimeout) {
    throw new ConfigError("CAREHOOKS_CONNECT_TIMEOUT must not exceed CAREHOOKS_REQUEST_TIMEOUT");
  }
  if (config.masterKey !== undefined && !MASTER_KEY_PATTERN.test(config.masterKey)) {
    throw new ConfigError("CAREHOOKS_MASTER_KEY must be 64 hex characters (32 random bytes)");
  }
  if (config.jwtSecret !== undefined && config.jwtSecret.length < MIN_JWT_SECRET_LENGTH) {
    throw new ConfigError(`CAREHOOKS_JWT_SECRET must be at least ${MIN_JWT_SECRET_LENGTH} characters`);
  }
  if (!/^(sqlite:|postgres:\/\/|postgresql:\/\/)/.test(config.databaseUrl)) {
    throw new ConfigError("CAREHOOKS_DATABASE_URL must start with sqlite: or postgres://");
  }
}
