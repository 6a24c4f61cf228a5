/**
 * A real deadlock on PostgreSQL, for code that must survive being its victim.
 *
 * A transaction of the test's own runs `first` (taking rows), then starts
 * `victim`, which takes rows of its own and waits for the test's; then runs
 * `second`, which waits for the victim's: the cycle. The test's transaction
 * has a long deadlock_timeout, so the victim's backend, waiting since
 * before, finds the cycle at its own deadlock_timeout (1 s by default) and
 * is the one rolled back.
 *
 * PostgreSQL looks for a cycle once per wait, deadlock_timeout after it
 * began: if `second` comes later than that (a machine too busy to poll), the
 * test's transaction is rolled back instead and the victim never was. Such
 * an attempt proves nothing, so it is made again on fresh rows (`setup`),
 * up to three times. `SET LOCAL deadlock_timeout` needs a superuser, as the
 * test database's `postgres` is.
 */
import { type RawBuilder, sql } from "kysely";
import type { Db } from "../../src/store/open.js";
import { until } from "./fixtures.js";

export interface Cycle<T> {
  readonly first: RawBuilder<unknown>;
  readonly victim: () => Promise<T>;
  readonly second: RawBuilder<unknown>;
}

const ATTEMPTS = 3;

export async function deadlock<S, T>(
  db: Db,
  setup: () => Promise<S>,
  cycle: (state: S) => Cycle<T>,
): Promise<{ readonly state: S; readonly result: T }> {
  for (let attempt = 1; ; attempt++) {
    const state = await setup();
    const { first, victim, second } = cycle(state);
    let running: Promise<T> | undefined;
    let settled = false;
    try {
      await db.transaction().execute(async (trx) => {
        await sql`SET LOCAL deadlock_timeout = '30s'`.execute(trx);
        const { rows } = await sql<{ pid: number }>`SELECT pg_backend_pid() AS pid`.execute(trx);
        const holder = rows[0]?.pid as number;
        await first.execute(trx);
        running = victim();
        running.then(
          () => (settled = true),
          () => (settled = true),
        );
        await until(
          async () => settled || (await waitingFor(db, holder)) > 0,
          10_000,
          "the other side to wait for the test's transaction",
        );
        await second.execute(trx);
      });
    } catch (error) {
      await (running as Promise<T> | undefined)?.catch(() => undefined);
      if (attempt < ATTEMPTS && (error as { code?: unknown }).code === "40P01") continue;
      throw error;
    }
    return { state, result: await (running as unknown as Promise<T>) };
  }
}

/** Backends waiting for a lock the backend `holder` holds. */
async function waitingFor(db: Db, holder: number): Promise<number> {
  const { rows } = await sql<{ n: number }>`
    SELECT count(*)::int AS n FROM pg_stat_activity WHERE ${holder} = ANY(pg_blocking_pids(pid))`.execute(db);
  return rows[0]?.n ?? 0;
}
