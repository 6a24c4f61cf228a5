/** Liveness and readiness probes. */
import { Type } from "@sinclair/typebox";
import { ApiError } from "../domain/errors.js";
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
    "/readyz",
    {
      schema: {
        tags: ["ops"],
        summary: "The database answers",
        response: {
          200: Type.Object({ status: Type.Literal("ready"), database: Type.String() }),
          ...errorResponses(503),
        },
      },
    },
    async () => {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error("timeout")), READY_TIMEOUT_MS);
      });
      try {
        await Promise.race([ctx.adapter.ping(), timeout]);
      } catch {
        throw new ApiError("SERVICE_UNAVAILABLE", "the database does not answer", { "retry-after": "5" });
      } finally {
        clearTimeout(timer);
      }
      return { status: "ready" as const, database: ctx.adapter.name };
    },
  );
}
