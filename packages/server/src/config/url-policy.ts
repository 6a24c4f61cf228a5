/**
 * Where deliveries may go, read from the configuration: a module of its own so
 * that the dispatcher thread, which needs only this, does not load the API's
 * composition root (runtime.ts).
 */
import { parseAllowedTargets, type UrlPolicy } from "../domain/url-policy.js";
import { type Config, ConfigError } from "./load.js";

/** Where deliveries may go, from CAREHOOKS_ALLOW_HTTP and CAREHOOKS_ALLOWED_TARGETS. */
export function urlPolicyOf(config: Config): UrlPolicy {
  try {
    return { allowHttp: config.allowHttp, allowedTargets: parseAllowedTargets(config.allowedTargets) };
  } catch (error) {
    throw new ConfigError(`CAREHOOKS_ALLOWED_TARGETS: ${(error as Error).message}`);
  }
}
