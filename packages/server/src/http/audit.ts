/** Writes the access-log row of a detail or list read; the answer waits for it. */
import type { FastifyRequest } from "fastify";
import type { AccessOutcome } from "../store/schema.js";
import type { AppContext, Principal } from "./context.js";

export async function auditRead(
  ctx: AppContext,
  request: FastifyRequest,
  principal: Principal,
  read: { resourceType: string; resourceId?: string; resourceIds?: readonly string[]; outcome: AccessOutcome },
): Promise<void> {
  const userAgent = request.headers["user-agent"];
  await ctx.audit.write({
    businessId: principal.businessId,
    clientId: principal.clientId,
    resourceType: read.resourceType,
    resourceId: read.resourceId,
    resourceIds: read.resourceIds,
    outcome: read.outcome,
    method: request.method,
    path: request.url,
    requestId: request.id,
    ip: request.ip,
    userAgent: typeof userAgent === "string" ? userAgent : undefined,
  });
}
