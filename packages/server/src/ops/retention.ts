/** Periodic clean-up of rows that can no longer be used: expired refresh tokens, idempotency keys and portal links. */
import type { FastifyBaseLogger } from "fastify";
import { deleteExpiredIdempotencyKeys } from "../store/idempotency-keys.js";
import type { Db } from "../store/open.js";
import { deleteExpiredPortalSessions } from "../store/portal-sessions.js";
import { deleteExpiredRefreshTokens } from "../store/refresh-tokens.js";

const SWEEP_EVERY_MS = 10 * 60_000;

export async function sweepExpired(
  db: Db,
  now = Date.now(),
): Promise<{ refreshTokens: number; idempotencyKeys: number; portalSessions: number }> {
  return {
    refreshTokens: await deleteExpiredRefreshTokens(db, now),
    idempotencyKeys: await deleteExpiredIdempotencyKeys(db, now),
    portalSessions: await deleteExpiredPortalSessions(db, now),
  };
}

/** Starts the sweep; returns the function that stops it. */
export function startRetention(db: Db, log: FastifyBaseLogger, everyMs = SWEEP_EVERY_MS): () => void {
  const timer = setInterval(() => {
    sweepExpired(db)
      .then((removed) => log.debug(removed, "retention sweep"))
      .catch((error) => log.warn({ err: error }, "retention sweep failed"));
  }, everyMs);
  timer.unref();
  return () => clearInterval(timer);
}
