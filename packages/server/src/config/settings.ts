/**
 * Every setting carehooks reads, in one place. Each is the environment variable
 * `CAREHOOKS_<NAME>` and the `serve` flag `--<name-in-kebab-case>`; a flag wins
 * over the environment, which wins over the default.
 */
import { parseBoolean, parseDuration, parseInteger, parseList, parseSize } from "./units.js";

export interface Setting<T> {
  /** The name after `CAREHOOKS_`. */
  readonly name: string;
  /** The default as a user would write it; undefined when there is none or it is derived. */
  readonly default: string | undefined;
  readonly doc: string;
  readonly parse: (text: string) => T;
}

const text = (value: string): string => value;
const optional = (value: string): string | undefined => (value === "" ? undefined : value);
const duration = parseDuration;
const size = parseSize;

function oneOf<const T extends string>(...values: T[]): (value: string) => T {
  return (value) => {
    if ((values as string[]).includes(value)) return value as T;
    throw new Error(`"${value}" is not one of ${values.join(", ")}`);
  };
}

/** `#rrggbb`: the only colour form the dashboard puts into its stylesheet. */
export function hexColor(value: string): string {
  if (!/^#[0-9a-fA-F]{6}$/.test(value)) throw new Error(`"${value}" is not a colour written #rrggbb`);
  return value.toLowerCase();
}

function durationList(value: string): number[] {
  const delays = parseList(value).map(parseDuration);
  if (delays.length === 0) throw new Error("the retry schedule needs at least one delay");
  return delays;
}

export const SETTINGS = {
  databaseUrl: {
    name: "DATABASE_URL",
    default: undefined,
    doc: "`sqlite:PATH` or `postgres://…` (default: `sqlite:<CAREHOOKS_DATA_DIR>/carehooks.db`). A `schema` query parameter selects a PostgreSQL schema.",
    parse: optional,
  },
  databasePoolSize: {
    name: "DATABASE_POOL_SIZE",
    default: "10",
    doc: "PostgreSQL connections per process (SQLite always uses one).",
    parse: (v) => parseInteger(v, 1, 1000),
  },
  createBatch: {
    name: "CREATE_BATCH",
    default: "64",
    doc: "Most creates written together. Creates without an `Idempotency-Key` that reach the database in the same turn of an API process's event loop share one statement on PostgreSQL, one transaction on SQLite, and a commit, each answered after it; `1` writes each on its own.",
    parse: (v) => parseInteger(v, 1, 1000),
  },
  cacheTtl: {
    name: "CACHE_TTL",
    default: "60s",
    doc: "Longest an API process uses a cached client or list of a business's webhooks before reading it again, a safety net on PostgreSQL for changes made outside carehooks (SQLite sees those at the next request); `0` turns the caches off. Changes made through carehooks reach every process within `CAREHOOKS_CACHE_STALENESS`.",
    parse: duration,
  },
  cacheStaleness: {
    name: "CACHE_STALENESS",
    default: "1s",
    doc: "PostgreSQL: longest an API process acts on a client or webhook changed by another process. Each checks its LISTEN connection every half of this and reads from the database while it cannot; a check unanswered for ten times this reopens the connection.",
    parse: duration,
  },
  cacheSize: {
    name: "CACHE_SIZE",
    default: "10000",
    doc: "Entries in each per-process cache (API clients; businesses' webhooks); the oldest is dropped first.",
    parse: (v) => parseInteger(v, 1, 10_000_000),
  },
  host: { name: "HOST", default: "127.0.0.1", doc: "Address the API listens on.", parse: text },
  port: { name: "PORT", default: "8080", doc: "Port the API listens on.", parse: (v) => parseInteger(v, 0, 65535) },
  role: {
    name: "ROLE",
    default: "all",
    doc: "`all` (API and dispatcher), `api` or `worker`.",
    parse: oneOf("all", "api", "worker"),
  },
  dataDir: { name: "DATA_DIR", default: "./data", doc: "Embedded database and generated secrets.", parse: text },
  masterKey: {
    name: "MASTER_KEY",
    default: undefined,
    doc: "32 random bytes as 64 hex characters; encrypts signing keys at rest. Generated into the data dir when embedded; required with PostgreSQL.",
    parse: optional,
  },
  jwtSecret: {
    name: "JWT_SECRET",
    default: undefined,
    doc: "At least 32 characters; signs access tokens. Generated into the data dir when embedded; required with PostgreSQL and shared by all API processes.",
    parse: optional,
  },
  accessTokenTtl: { name: "ACCESS_TOKEN_TTL", default: "15m", doc: "Access token lifetime.", parse: duration },
  refreshTokenTtl: { name: "REFRESH_TOKEN_TTL", default: "30d", doc: "Refresh token lifetime.", parse: duration },
  clientTimeout: {
    name: "CLIENT_TIMEOUT",
    default: "30s",
    doc: "Time an API client has to send a whole request (headers and body).",
    parse: duration,
  },
  loginRateLimit: {
    name: "LOGIN_RATE_LIMIT",
    default: "20",
    doc: "Login attempts, and separately refresh attempts, per minute per client IP, per API process.",
    parse: (v) => parseInteger(v, 1, 1_000_000),
  },
  loginRateLimitPerClient: {
    name: "LOGIN_RATE_LIMIT_PER_CLIENT",
    default: "20",
    doc: "Failed logins per minute naming one `client_id`, from any address, per API process; past it that client id is answered 429 until the minute is over, so guessing one client's secret from many addresses is as slow as from one.",
    parse: (v) => parseInteger(v, 1, 1_000_000),
  },
  credentialChecks: {
    name: "CREDENTIAL_CHECKS",
    default: "2",
    doc: "Client secret checks (scrypt: about 50 ms and 16 MiB each, on the thread pool that also writes to disk) run at once per API process. Sixteen times as many wait their turn; logins beyond that are answered 503 with Retry-After.",
    parse: (v) => parseInteger(v, 1, 64),
  },
  streamsPerClient: {
    name: "STREAMS_PER_CLIENT",
    default: "5",
    doc: "Open event streams (`GET …/stream`, `carehooks listen`) per API client, per API process; one more is answered 429.",
    parse: (v) => parseInteger(v, 1, 100_000),
  },
  streamsPerProcess: {
    name: "STREAMS_PER_PROCESS",
    default: "500",
    doc: "Open event streams per API process, all clients together; one more is answered 429. They share one scan of the database.",
    parse: (v) => parseInteger(v, 1, 1_000_000),
  },
  bodyLimit: { name: "BODY_LIMIT", default: "1MiB", doc: "Largest request body accepted.", parse: size },
  allowedTargets: {
    name: "ALLOWED_TARGETS",
    default: "",
    doc: "Comma-separated CIDRs that endpoints may reach despite the SSRF policy.",
    parse: parseList,
  },
  allowHttp: { name: "ALLOW_HTTP", default: "false", doc: "Accept plain `http://` endpoints.", parse: parseBoolean },
  retrySchedule: {
    name: "RETRY_SCHEDULE",
    default: "5s,5m,30m,2h,5h,10h,14h,20h,24h",
    doc: "Delays after the first attempt, each with ±20 % jitter.",
    parse: durationList,
  },
  connectTimeout: { name: "CONNECT_TIMEOUT", default: "5s", doc: "Connect timeout per attempt.", parse: duration },
  requestTimeout: { name: "REQUEST_TIMEOUT", default: "15s", doc: "Total timeout per attempt.", parse: duration },
  keepSuccessBody: {
    name: "KEEP_SUCCESS_BODY",
    default: "false",
    doc: "Keep the first 4 KiB of 2xx response bodies in the attempt log (failures' are always kept); off, they are read and dropped.",
    parse: parseBoolean,
  },
  maxInFlight: {
    name: "MAX_IN_FLIGHT",
    default: "256",
    doc: "Concurrent deliveries per worker process.",
    parse: (v) => parseInteger(v, 1, 100_000),
  },
  maxInFlightPerEndpoint: {
    name: "MAX_IN_FLIGHT_PER_ENDPOINT",
    default: "10",
    doc: "Concurrent deliveries per subscription, across all workers.",
    parse: (v) => parseInteger(v, 1, 10_000),
  },
  lease: {
    name: "LEASE",
    default: "60s",
    doc: "Claim lease; at least twice `CAREHOOKS_REQUEST_TIMEOUT`.",
    parse: duration,
  },
  workerTimeout: {
    name: "WORKER_TIMEOUT",
    default: "10s",
    doc: "A worker whose heartbeat is older than this is dead: any live worker returns its deliveries to pending. Workers beat every fifth of it.",
    parse: duration,
  },
  completionFlush: {
    name: "COMPLETION_FLUSH",
    default: "5ms",
    doc: "How long finished attempts wait to be recorded together (or 200 of them, whichever first).",
    parse: duration,
  },
  pollInterval: {
    name: "POLL_INTERVAL",
    default: "1s",
    doc: "Fallback wake-up when no notification comes.",
    parse: duration,
  },
  breakerThreshold: {
    name: "BREAKER_THRESHOLD",
    default: "5",
    doc: "Consecutive failures that make a subscription degraded.",
    parse: (v) => parseInteger(v, 1, 1_000_000),
  },
  disableAfter: {
    name: "DISABLE_AFTER",
    default: "5d",
    doc: "Continuous failure before a subscription is disabled.",
    parse: duration,
  },
  keyOverlap: {
    name: "KEY_OVERLAP",
    default: "24h",
    doc: "How long a replaced signing key keeps signing.",
    parse: duration,
  },
  idempotencyTtl: {
    name: "IDEMPOTENCY_TTL",
    default: "24h",
    doc: "How long idempotency keys are kept.",
    parse: duration,
  },
  sqliteSynchronous: {
    name: "SQLITE_SYNCHRONOUS",
    default: "FULL",
    doc: "`FULL` survives power loss; `NORMAL` only process crashes.",
    parse: oneOf("FULL", "NORMAL"),
  },
  sqliteBusyTimeout: {
    name: "SQLITE_BUSY_TIMEOUT",
    default: "200ms",
    doc: "SQLite: longest a write (the API's or the dispatcher's) waits for a lock another process holds; waiting blocks its thread. Past it an API write answers 503 with Retry-After, and so does every write for the next second without waiting; `/readyz` says not ready meanwhile.",
    parse: duration,
  },
  dispatcherThread: {
    name: "DISPATCHER_THREAD",
    default: "true",
    doc: "With SQLite and role `all` or `worker`: run the dispatcher on a thread of its own (a second CPU core) beside the main thread (the API's, in role `all`); `false` runs both on one event loop.",
    parse: parseBoolean,
  },
  v8InterruptBudget: {
    name: "V8_INTERRUPT_BUDGET",
    default: "16384",
    doc: "Node 20 only: the bytecode V8 runs in a function between its checks for optimising it (node's `--interrupt-budget`, 67584 by default), set by `serve` at start so that a fresh process, such as a restart that finds a backlog, reaches its warm speed sooner. `0` keeps V8's own; at least 1024 otherwise; a `--interrupt-budget` given to `node` itself wins; other Node versions keep theirs.",
    parse: (v) => {
      const budget = parseInteger(v, 0, 1 << 30);
      // A tiny budget would have V8 stop to check nearly every function call.
      if (budget > 0 && budget < 1024) throw new Error(`${budget} is below 1024 (0 keeps V8's own budget)`);
      return budget;
    },
  },
  shutdownGrace: {
    name: "SHUTDOWN_GRACE",
    default: "20s",
    doc: "Time to finish in-flight work on SIGTERM or SIGINT.",
    parse: duration,
  },
  publicUrl: {
    name: "PUBLIC_URL",
    default: "",
    doc: "The address integrators reach this server at, such as `https://hooks.clinic.example`, for the links portal sessions answer (default: the scheme and host of the request that made the session).",
    parse: optional,
  },
  dashboardFrameAncestors: {
    name: "DASHBOARD_FRAME_ANCESTORS",
    default: "'self'",
    doc: "The CSP `frame-ancestors` of the dashboard: the sites that may show it in an iframe, such as `https://platform.clinic.example` for an embedded portal; `'none'` forbids framing.",
    parse: text,
  },
  brandName: {
    name: "BRAND_NAME",
    default: "carehooks",
    doc: "Product name the dashboard shows; a portal session may override it.",
    parse: text,
  },
  brandLogoUrl: {
    name: "BRAND_LOGO_URL",
    default: "",
    doc: "Logo the dashboard shows (an `https:` URL or a path on this server); a portal session may override it.",
    parse: optional,
  },
  brandAccentColor: {
    name: "BRAND_ACCENT_COLOR",
    default: "#0b5cad",
    doc: "Accent colour of the dashboard as `#rrggbb`; a portal session may override it.",
    parse: hexColor,
  },
  portalUrlTtl: {
    name: "PORTAL_URL_TTL",
    default: "15m",
    doc: "How long a portal session's single-use link stays valid before it is opened (a session may ask for less or more, up to 7 days).",
    parse: duration,
  },
  portalSessionTtl: {
    name: "PORTAL_SESSION_TTL",
    default: "1h",
    doc: "How long a portal opened from a link stays signed in; it is not renewed, the platform makes a new link.",
    parse: duration,
  },
  egressProxy: { name: "EGRESS_PROXY", default: "", doc: "HTTP proxy for deliveries.", parse: optional },
  sourceIps: { name: "SOURCE_IPS", default: "", doc: "Comma-separated IPs published to receivers.", parse: parseList },
  failureLogInterval: {
    name: "FAILURE_LOG_INTERVAL",
    default: "10s",
    doc: "Failed delivery attempts are logged at warn level at most once per webhook per this interval (the line counts the ones it stands for).",
    parse: duration,
  },
  logLevel: {
    name: "LOG_LEVEL",
    default: "info",
    doc: "`fatal`, `error`, `warn`, `info`, `debug`, `trace` or `silent`. At `info` and below, one log line per answered API request (`reqId`, `method`, `url`, `statusCode`, `responseTime` in ms).",
    parse: oneOf("fatal", "error", "warn", "info", "debug", "trace", "silent"),
  },
} satisfies Record<string, Setting<unknown>>;

export type SettingKey = keyof typeof SETTINGS;
export type Settings = { [K in SettingKey]: ReturnType<(typeof SETTINGS)[K]["parse"]> };

/** `MAX_IN_FLIGHT_PER_ENDPOINT` → `max-in-flight-per-endpoint`. */
export function flagName(setting: Setting<unknown>): string {
  return setting.name.toLowerCase().replaceAll("_", "-");
}

export function envName(setting: Setting<unknown>): string {
  return `CAREHOOKS_${setting.name}`;
}
