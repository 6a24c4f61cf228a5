import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import type {
  FastifyBaseLogger,
  FastifyInstance,
  RawReplyDefaultExpression,
  RawRequestDefaultExpression,
  RawServerDefault,
} from "fastify";
import type { AccessLogWriter } from "../audit/access-log-writer.js";
import type { TokenService } from "../auth/tokens.js";
import type { Config } from "../config/load.js";
import type { KeyBox } from "../domain/key-box.js";
import type { Scope } from "../domain/scopes.js";
import type { UrlPolicy } from "../domain/url-policy.js";
import type { Metrics } from "../ops/metrics.js";
import type { Caches } from "../store/caches.js";
import type { DialectAdapter } from "../store/dialect/adapter.js";
import type { Db } from "../store/open.js";
import type { Wakeup } from "../store/wakeup.js";

/** Everything a route needs, handed to each route module when the app is built. */
export interface AppContext {
  readonly config: Config;
  readonly adapter: DialectAdapter;
  readonly db: Db;
  readonly keyBox: KeyBox;
  readonly tokens: TokenService;
  readonly urlPolicy: UrlPolicy;
  readonly audit: AccessLogWriter;
  readonly wakeup: Wakeup;
  readonly metrics: Metrics;
  /** The API client and webhooks a request reads before it writes (PostgreSQL; pass-through on SQLite). */
  readonly caches: Caches;
}

export type App = FastifyInstance<
  RawServerDefault,
  RawRequestDefaultExpression,
  RawReplyDefaultExpression,
  FastifyBaseLogger,
  TypeBoxTypeProvider
>;

/** Who is calling: set by the auth hook on every route that names a scope. */
export interface Principal {
  readonly clientId: string;
  readonly businessId: string;
  readonly scopes: readonly Scope[];
  /** When the access token stops being valid (ms): a long-lived response such as /stream ends then. */
  readonly tokenExpiresAt?: number;
}

declare module "fastify" {
  interface FastifyRequest {
    principal: Principal | null;
  }
  interface FastifyContextConfig {
    /** The scope a route needs; absent means the route is public. */
    scope?: Scope;
    /** Reads of this resource type are written to the access log, denied ones included. */
    audit?: "appointment" | "prescription";
    /**
     * The route writes through `runWrite` or `runIngest` (writes.ts), which take an Idempotency-Key:
     * the OpenAPI document says so on exactly these routes, and the two refuse to run without it.
     */
    idempotent?: true;
  }
}

/** The principal of an authenticated route; the auth hook guarantees it. */
export function principalOf(request: { principal: Principal | null }): Principal {
  if (!request.principal) throw new Error("route reached without authentication");
  return request.principal;
}
