/** Builds the Fastify app: parsing, validation, auth, errors, and every resource's routes. */
import swagger from "@fastify/swagger";
import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import { Ajv } from "ajv";
import addFormatsModule from "ajv-formats";
import Fastify, { type FastifyServerOptions, LogController } from "fastify";
import { ApiError, invalidRequest } from "../domain/errors.js";
import { newId } from "../domain/ids.js";
import { version } from "../version.js";
import { accessLogRoutes } from "./access-logs.js";
import { accountRoutes } from "./account.js";
import { appointmentRoutes } from "./appointments.js";
import { authenticate } from "./auth-hook.js";
import type { App, AppContext } from "./context.js";
import { dashboardRoutes } from "./dashboard.js";
import { deliveryRoutes } from "./deliveries.js";
import { docsRoutes } from "./docs.js";
import { handleError, sendError, toApiError, writeClientError } from "./errors.js";
import { eventTypeRoutes } from "./event-types.js";
import { healthRoutes } from "./health.js";
import { logoutRoutes } from "./logout.js";
import { MethodTable } from "./method-table.js";
import { operationIdFrom, withExtras } from "./openapi-extras.js";
import { portalSessionRoutes } from "./portal-sessions.js";
import { prescriptionRoutes } from "./prescriptions.js";
import { statsRoutes } from "./stats.js";
import { streamRoutes } from "./stream.js";
import { subscriptionSecretRoute } from "./subscription-secret.js";
import { subscriptionRoutes } from "./subscriptions.js";
import { IDEMPOTENCY_KEY_HEADERS } from "./writes.js";

// ajv-formats is CommonJS: its plugin function is the `default` property of what ESM imports.
const addFormats = (addFormatsModule as unknown as { default: (ajv: Ajv) => Ajv }).default;

/** Bodies are validated strictly; query strings and path parameters are coerced from text. */
function validators() {
  const body = new Ajv({ removeAdditional: false, useDefaults: true, coerceTypes: false, strict: false });
  const text = new Ajv({ removeAdditional: false, useDefaults: true, coerceTypes: "array", strict: false });
  addFormats(body);
  addFormats(text);
  return { body, text };
}

function containsNul(value: unknown): boolean {
  if (typeof value === "string") return value.includes("\u0000");
  if (Array.isArray(value)) return value.some(containsNul);
  if (value !== null && typeof value === "object") {
    return Object.entries(value).some(([key, inner]) => key.includes("\u0000") || containsNul(inner));
  }
  return false;
}

export interface BuildOptions {
  readonly logger?: FastifyServerOptions["logger"];
  /** `ops`: only health and docs, for a worker process. */
  readonly routes?: "all" | "ops";
}

export async function buildApp(ctx: AppContext, options: BuildOptions = {}): Promise<App> {
  let closing = false;
  const app = Fastify({
    logger: options.logger ?? false,
    // One line per request, when it is answered (the onResponse hook below), instead of Fastify's two.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: ctx.config.bodyLimit,
    requestTimeout: ctx.config.clientTimeout,
    genReqId: () => newId("request"),
    // Answered in the catalog's shape by the onRequest hook below instead.
    return503OnClosing: false,
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: 200 },
    // Errors Fastify raises before routing (a malformed URL) get the catalog's shape too.
    frameworkErrors: (error, request, reply) => {
      const mapped = toApiError(error, ctx.adapter) ?? invalidRequest("malformed request");
      return sendError(reply, request, mapped);
    },
    clientErrorHandler: (error, socket) => writeClientError(error, socket),
  }).withTypeProvider<TypeBoxTypeProvider>();
  app.addHook("preClose", async () => {
    closing = true;
  });
  // The hooks every request runs are callbacks, not async functions: each async hook costs a promise and a turn
  // of the microtask queue per request.
  app.addHook("onRequest", (_request, reply, done) => {
    if (!closing) return done();
    reply.header("connection", "close");
    done(
      new ApiError("SERVICE_UNAVAILABLE", "the server is shutting down; retry on another instance", {
        "retry-after": "1",
      }),
    );
  });

  const ajv = validators();
  app.setValidatorCompiler(({ schema, httpPart }) => (httpPart === "body" ? ajv.body : ajv.text).compile(schema));
  app.decorateRequest("principal", null);

  app.removeContentTypeParser(["text/plain"]);
  // An empty body on a POST such as /enable is no body at all, not a JSON error.
  const parseJson = app.getDefaultJsonParser("error", "error");
  app.addContentTypeParser("application/json", { parseAs: "string" }, (request, body, done) => {
    if (body === "" || (typeof body === "string" && body.trim() === "")) return done(null, undefined);
    parseJson(request, body as string, (error, value) => {
      if (error) return done(error, undefined);
      // No database stores NUL in text the same way: refuse it everywhere, up front.
      if (containsNul(value)) return done(invalidRequest("strings must not contain NUL characters"), undefined);
      done(null, value);
    });
  });

  const methods = new MethodTable();
  const operationIds = new Set<string>();
  app.addHook("onRoute", (route) => {
    methods.add(route.method, route.url);
    const scope = route.config?.scope;
    if (scope && route.schema) {
      route.schema.security = [{ bearer: [] }, { legacyAuth: [] }];
      route.schema.description = `Scope: \`${scope}\`.${route.schema.description ? ` ${route.schema.description}` : ""}`;
    } else if (route.schema) {
      // Login, refresh, health and the like: no token.
      route.schema.security = [];
    }
    const schema = route.schema as { summary?: string; operationId?: string; hide?: boolean } | undefined;
    if (schema?.summary && !schema.operationId && !schema.hide) {
      schema.operationId = operationIdFrom(schema.summary, String(route.method), operationIds);
    }
  });
  app.addHook("onRequest", authenticate(ctx));
  // No body at all reads as an empty object: a bare POST /start is valid, and a create says which field is missing.
  app.addHook("preValidation", (request, _reply, done) => {
    if (request.body === undefined && (request.method === "POST" || request.method === "PATCH")) request.body = {};
    done();
  });
  app.addHook("onSend", (request, reply, payload, done) => {
    reply.header("x-request-id", request.id);
    done(null, payload);
  });
  app.addHook("onResponse", (request, reply, done) => {
    request.log.info(
      { method: request.method, url: request.url, statusCode: reply.statusCode, responseTime: reply.elapsedTime },
      "request",
    );
    const route = request.routeOptions.url ?? "unmatched";
    const labels = { method: request.method, route, status: String(reply.statusCode) };
    ctx.metrics.httpRequests.inc(labels);
    ctx.metrics.httpDuration.observe({ route }, reply.elapsedTime / 1000);
    done();
  });
  app.setErrorHandler(handleError(ctx.adapter));
  app.setNotFoundHandler((request, reply) => {
    const path = request.url.split("?")[0] ?? "/";
    const allowed = methods.allowed(path);
    if (allowed.length > 0) {
      return sendError(
        reply,
        request,
        new ApiError("METHOD_NOT_ALLOWED", `${request.method} is not allowed on ${path}; use ${allowed.join(", ")}`, {
          allow: allowed.join(", "),
        }),
      );
    }
    return sendError(reply, request, new ApiError("NOT_FOUND", `no route ${request.method} ${path}`));
  });

  await app.register(swagger, {
    // The routes that take an Idempotency-Key show it as a header parameter.
    transform: ({ schema, url, route }) => ({
      url,
      schema: route.config?.idempotent === true ? { ...schema, headers: IDEMPOTENCY_KEY_HEADERS } : schema,
    }),
    // biome-ignore lint/suspicious/noExplicitAny: the plugin types the 3.0, 3.1 and 3.2 documents apart; this adds 3.1 fields.
    transformObject: (documents) => withExtras((documents as { openapiObject: any }).openapiObject) as any,
    openapi: {
      openapi: "3.1.0",
      servers: [{ url: "/", description: "The carehooks server that serves this document" }],
      info: {
        title: "carehooks API",
        version,
        description:
          "Clinic business API whose every change becomes a signed webhook event. Eka Care compatible. The carehooks repository documents the webhook request and its signatures (docs/webhooks.md), retries and states (docs/retries.md), errors (docs/errors.md), configuration (docs/configuration.md) and the CLI (docs/cli.md).",
      },
      components: {
        securitySchemes: {
          bearer: { type: "http", scheme: "bearer", bearerFormat: "JWT" },
          legacyAuth: { type: "apiKey", in: "header", name: "auth" },
        },
      },
    },
  });

  if (options.routes !== "ops") {
    accountRoutes(app, ctx);
    logoutRoutes(app, ctx);
    subscriptionRoutes(app, ctx);
    subscriptionSecretRoute(app, ctx);
    eventTypeRoutes(app);
    appointmentRoutes(app, ctx);
    prescriptionRoutes(app, ctx);
    accessLogRoutes(app, ctx);
    deliveryRoutes(app, ctx);
    streamRoutes(app, ctx);
    portalSessionRoutes(app, ctx);
    statsRoutes(app, ctx);
    dashboardRoutes(app, ctx);
  }
  healthRoutes(app, ctx);
  await docsRoutes(app);
  await app.ready();
  return app;
}
