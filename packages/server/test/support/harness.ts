/** Builds a real app over a real database for `app.inject()` tests, with helpers to act as a client. */
import type { LightMyRequestResponse } from "fastify";
import { afterAll, beforeAll } from "vitest";
import { type Config, loadConfig } from "../../src/config/load.js";
import type { Dispatcher } from "../../src/delivery/dispatcher.js";
import { createDeliveryEngine } from "../../src/delivery/engine.js";
import { generateMasterKey } from "../../src/domain/key-box.js";
import { SCOPES, type Scope } from "../../src/domain/scopes.js";
import { type BuildOptions, buildApp } from "../../src/http/app.js";
import type { App, AppContext } from "../../src/http/context.js";
import { createContext, openMigratedDatabase } from "../../src/runtime.js";
import { createApiClient } from "../../src/store/api-clients.js";
import { createBusiness } from "../../src/store/businesses.js";
import { createTestDatabase, type DialectName, type TestDatabase } from "./databases.js";
import { until } from "./fixtures.js";
import { type Receiver, startReceiver } from "./receiver.js";

export interface Harness {
  readonly app: App;
  /** Present when started with a dispatcher. */
  readonly dispatcher: Dispatcher | undefined;
  readonly ctx: AppContext;
  readonly database: TestDatabase;
  /** A new business with one client holding these scopes, logged in. */
  tenant(scopes?: readonly Scope[]): Promise<Tenant>;
  close(): Promise<void>;
}

export interface Tenant {
  readonly businessId: string;
  readonly clientId: string;
  readonly clientSecret: string;
  readonly accessToken: string;
  readonly refreshToken: string;
  /** Another client of the same business. */
  colleague(scopes?: readonly Scope[]): Promise<Tenant>;
  request(
    method: string,
    url: string,
    body?: unknown,
    headers?: Record<string, string>,
  ): Promise<LightMyRequestResponse>;
}

/** Waits (up to 15 s) until `count` of a webhook's deliveries have failed. */
export async function untilFailed(tenant: Tenant, webhookId: string, count: number): Promise<void> {
  await until(
    async () => {
      const path = `/notification/v1/connect/webhook/subscriptions/${webhookId}/deliveries?status=failed`;
      return (await tenant.request("GET", path)).json().data.length === count ? true : undefined;
    },
    15_000,
    `${count} failed deliveries`,
  );
}

let tenantCount = 0;

export interface HarnessOptions {
  /** Run the delivery dispatcher in-process, as `serve --role all` does. */
  readonly dispatcher?: boolean;
  /** The app's logger (`buildApp`'s option): none unless given. */
  readonly logger?: BuildOptions["logger"];
}

/** Settings for tests that deliver to a receiver on 127.0.0.1, with a fast schedule. */
export const LOCAL_DELIVERY_ENV: Record<string, string> = {
  CAREHOOKS_ALLOW_HTTP: "true",
  CAREHOOKS_ALLOWED_TARGETS: "127.0.0.0/8",
  CAREHOOKS_RETRY_SCHEDULE: "100ms,200ms,300ms",
  CAREHOOKS_CONNECT_TIMEOUT: "500ms",
  CAREHOOKS_REQUEST_TIMEOUT: "1s",
  CAREHOOKS_LEASE: "3s",
  CAREHOOKS_POLL_INTERVAL: "200ms",
};

/**
 * For a describe block: a harness with the dispatcher running, on LOCAL_DELIVERY_ENV and `env`, and
 * the receivers its tests start with `receiver()`, all closed after the block. `h` is there once
 * the block's beforeAll has run.
 */
export function deliveringHarness(
  dialect: DialectName,
  env: Record<string, string> = {},
): { readonly h: Harness; receiver(): Promise<Receiver> } {
  let h: Harness | undefined;
  const receivers: Receiver[] = [];
  beforeAll(async () => {
    h = await startHarness(dialect, { ...LOCAL_DELIVERY_ENV, ...env }, { dispatcher: true });
  });
  afterAll(async () => {
    await h?.close();
    for (const receiver of receivers) await receiver.close();
  });
  return {
    get h() {
      return h as Harness;
    },
    async receiver() {
      const receiver = await startReceiver();
      receivers.push(receiver);
      return receiver;
    },
  };
}

export async function startHarness(
  dialect: DialectName,
  env: Record<string, string> = {},
  options: HarnessOptions = {},
): Promise<Harness> {
  const database = await createTestDatabase(dialect);
  const config: Config = loadConfig({
    CAREHOOKS_DATABASE_URL: database.url,
    CAREHOOKS_DATA_DIR: database.dataDir,
    CAREHOOKS_MASTER_KEY: generateMasterKey(),
    CAREHOOKS_JWT_SECRET: generateMasterKey(),
    CAREHOOKS_SQLITE_SYNCHRONOUS: "NORMAL",
    // Tests log in far more often than any client should.
    CAREHOOKS_LOGIN_RATE_LIMIT: "100000",
    ...env,
  });
  const adapter = await openMigratedDatabase(config);
  const ctx = await createContext(config, adapter);
  const app = await buildApp(ctx, { logger: options.logger });
  const engine = createDeliveryEngine(ctx, app.log);
  const { sender } = engine;
  const dispatcher = options.dispatcher ? engine.dispatcher : undefined;
  dispatcher?.start();

  async function login(clientId: string, clientSecret: string) {
    const response = await app.inject({
      method: "POST",
      url: "/connect-auth/v1/account/login",
      payload: { client_id: clientId, client_secret: clientSecret },
    });
    if (response.statusCode !== 200) throw new Error(`login failed: ${response.body}`);
    return response.json() as { access_token: string; refresh_token: string };
  }

  async function clientOf(businessId: string, scopes: readonly Scope[]): Promise<Tenant> {
    const { client, secret } = await createApiClient(adapter.db, { businessId, name: "test", scopes });
    const tokens = await login(client.id, secret);
    return {
      businessId,
      clientId: client.id,
      clientSecret: secret,
      accessToken: tokens.access_token,
      refreshToken: tokens.refresh_token,
      colleague: (more = SCOPES) => clientOf(businessId, more),
      request: (method, url, body, headers = {}) =>
        app.inject({
          method: method as "GET",
          url,
          headers: { authorization: `Bearer ${tokens.access_token}`, ...headers },
          ...(body === undefined ? {} : { payload: body as object }),
        }),
    };
  }

  return {
    app,
    dispatcher,
    ctx,
    database,
    async tenant(scopes = SCOPES) {
      tenantCount += 1;
      const business = await createBusiness(adapter.db, `Clinic ${tenantCount} ${Math.random().toString(36).slice(2)}`);
      return clientOf(business.id, scopes);
    },
    async close() {
      await dispatcher?.stop(1000);
      await sender.close();
      await ctx.wakeup.close();
      await app.close();
      await adapter.close();
      await database.drop();
    },
  };
}
