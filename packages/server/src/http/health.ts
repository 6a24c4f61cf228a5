/** Liveness and readiness probes. */
import { Type } from "@sinclair/typebox";
import { ApiError } from "../domain/errors.js";
import { queueLag } from "../store/deliveries.js";
import { version } from "../version.js";
import type { App, AppContext } from "./context.js";
import { errorResponses } from "./schemas.js";

const READY_TIMEOUT_MS = 2000;

export function healthRoutes(app: App, ctx: AppContext): void {
  app.get(
    "/healthz",
    {
      schema: {
        tags: ["ops"],
        summary: "The process is up",
        response: { 200: Type.Object({ status: Type.Literal("ok"), version: Type.String() }) },
      },
    },
    async () => ({ status: "ok" as const, version }),
  );

  app.get(
    "/metrics",
    { schema: { tags: ["ops"], summary: "Prometheus metrics", hide: true } },
    async (_request, reply) => reply.type(ctx.metrics.contentType).send(await ctx.metrics.render()),
  );

  app.get(
    "/readyz",
    {
      schema: {
        tags: ["ops"],
        summary: "The database answers and accepts writes",
        response: {
          200: Type.Object({
            status: Type.Literal("ready"),
            database: Type.String(),
            queue: Type.Object({
              pending: Type.Integer({ description: "deliveries waiting to be sent" }),
              in_flight: Type.Integer(),
              oldest_due_ms: Type.Integer({ description: "how long the oldest due delivery has waited" }),
            }),
          }),
          ...errorResponses(503),
        },
      },
    },
    async () => {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error("timeout")), READY_TIMEOUT_MS);
      });
      let lag: Awaited<ReturnType<typeof queueLag>>;
      let step = "does not answer";
      try {
        lag = await Promise.race([
          (async () => {
            await ctx.adapter.ping();
            // Reads can go on while another process holds SQLite's write lock; a server that cannot write is not ready.
            step = "does not accept writes (another process may hold its lock)";
            await ctx.db.transaction().execute(async () => undefined);
            step = "does not answer";
            return queueLag(ctx.adapter, Date.now());
          })(),
          timeout,
        ]);
      } catch {
        throw new ApiError("SERVICE_UNAVAILABLE", `the database ${step}`, { "retry-after": "5" });
      } finally {
        clearTimeout(timer);
      }
      return {
        status: "ready" as const,
        database: ctx.adapter.name,
        queue: { pending: lag.pending, in_flight: lag.inFlight, oldest_due_ms: lag.oldestDueMs },
      };
    },
  );
}
