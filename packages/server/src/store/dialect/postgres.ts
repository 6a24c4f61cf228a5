import { Kysely, PostgresDialect, sql } from "kysely";
import pg from "pg";
import type { Database } from "../schema.js";
import { LocalWakeup, type Wakeup } from "../wakeup.js";
import {
  type ChangeFeed,
  DEFAULT_CREATE_BATCH,
  type DialectAdapter,
  type DialectOptions,
  type Migration,
} from "./adapter.js";
import { ChangeWatchers } from "./change-watchers.js";
import { PgListener } from "./postgres-listener.js";

const INT8_OID = 20;
/** A heartbeat of the LISTEN connection unanswered for this many staleness bounds: the connection is reopened. */
const DEAD_AFTER_STALENESS = 10;
/** Any 64-bit number that names this lock; the same in every carehooks process. */
const MIGRATION_LOCK = 7_262_010_811;

/** pg hands int8 back as a string; ours are milliseconds and counts, well inside 2^53. */
function parseInt8(text: string): number {
  const value = Number(text);
  if (!Number.isSafeInteger(value)) throw new Error(`int8 value ${text} does not fit a JavaScript number`);
  return value;
}

const types = {
  getTypeParser: ((oid: number, format?: "text" | "binary") =>
    oid === INT8_OID ? parseInt8 : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
};

/**
 * Splits `?schema=name` off a PostgreSQL URL (that schema becomes the search path), and
 * `?options=…`, the operator's session settings, which go after carehooks' own (sessionOptions):
 * left in the URL, pg would send them instead of carehooks' settings.
 */
export function parsePostgresUrl(url: string): {
  connectionString: string;
  schema: string | undefined;
  options: string | undefined;
} {
  const parsed = new URL(url);
  const schema = parsed.searchParams.get("schema") ?? undefined;
  const options = parsed.searchParams.get("options") ?? undefined;
  parsed.searchParams.delete("schema");
  parsed.searchParams.delete("options");
  if (schema !== undefined && !/^[A-Za-z_][A-Za-z0-9_]{0,62}$/.test(schema)) {
    throw new Error(`schema "${schema}" is not a plain identifier`);
  }
  return { connectionString: parsed.toString(), schema, options };
}

const UNAVAILABLE_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ENOTFOUND",
  "ETIMEDOUT",
  "EPIPE",
  "57P01",
  "57P02",
  "57P03",
]);

/**
 * Wakes this process's dispatchers and streams after commits: NOTIFY from
 * any process (this one's coalesced to one per 2 ms, sent after the commit,
 * not in it: a NOTIFY in a write transaction holds a cluster-wide lock
 * through that transaction's commit and its flush, which serialises every
 * such commit; measured in docs/benchmarks-history.md). After every (re)connect the
 * dispatcher is woken once, to sweep what it may have missed while deaf.
 */
function wakeupOn(listener: PgListener, channel: string, pool: pg.Pool): Wakeup {
  const wakeup = new LocalWakeup(() => {
    pool.query(`NOTIFY ${channel}`).catch(() => {});
  });
  const off = [listener.on(channel, () => wakeup.deliver()), listener.onReconnect(() => wakeup.deliver())];
  return {
    notify: () => wakeup.notify(),
    subscribe: (listener: () => void) => wakeup.subscribe(listener),
    async close() {
      for (const stop of off) stop();
      await wakeup.close();
    },
  };
}

/** Cache changes on their own channel, the payload naming what changed; a reconnect means some may have been missed. */
function changesOn(listener: PgListener, channel: string): ChangeFeed {
  const watchers = new ChangeWatchers();
  let heard = false;
  const hear = () => {
    if (heard) return;
    heard = true;
    listener.on(channel, (key) => watchers.changed([key]));
    listener.onReconnect(() => watchers.reset());
  };
  return {
    async announce(db, keys) {
      if (keys.length === 0) return;
      await sql`SELECT pg_notify(${channel}, key) FROM unnest(${[...keys]}::text[]) AS key`.execute(db);
    },
    deliverLocally: (keys) => watchers.changed(keys),
    watch(watcher) {
      const remove = watchers.add(watcher);
      hear();
      return remove;
    },
    heardUntil: () => listener.heardUntil(),
  };
}

/**
 * Settings every pooled connection starts with: no JIT compilation, the schema, a worker's commit
 * mode, then the operator's own (the URL's `options`, or else PGOPTIONS, which pg reads only when
 * given none), which PostgreSQL applies last, so an operator can change any of them.
 * JIT: carehooks' hot statements read what they need by index, but the planner's cost estimate for a
 * claim over a large backlog passed jit_above_cost, and PostgreSQL then compiled the claim on every
 * call: 97 ms of a 129 ms claim of 100 deliveries (30 000 pending, 10 000 idle webhooks).
 */
function sessionOptions(schema: string | undefined, options: DialectOptions, operator: string | undefined): string {
  const settings = [
    "-c jit=off",
    ...(schema ? [`-c search_path=${schema}`] : []),
    ...(options.postgresAsynchronousCommits ? ["-c synchronous_commit=off"] : []),
    ...(operator?.trim() ? [operator.trim()] : []),
  ];
  return settings.join(" ");
}

/**
 * How long a connection keeps its cached plans, by how many times it has dropped them: PostgreSQL keeps
 * a prepared statement's generic plan, and each foreign key check's, until an ANALYZE of a table it
 * reads, which autovacuum runs a minute or more after the table changed. A plan made while a table was
 * nearly empty (a new deployment, a worker that started before the first events) scans it whole on
 * every call as it grows: a fan-out of ten whose workers started on empty tables delivered 932–2 274 a
 * second, against 3 684 and 3 980 with the drops. A drop is due 1 s after a connection's first use, then
 * 2, 4, … 32 s after the one before, then every minute; it is made at the connection's next use, and its
 * statements are planned again for the tables as they are.
 */
const REPLAN_AFTER_MS = [1000, 2000, 4000, 8000, 16_000, 32_000, 60_000];

/**
 * Drops a pooled connection's cached plans when due, before the work it was taken for (pg runs a
 * client's queries in order): that work waits one more round trip, and plans its statements again.
 */
function replanning(pool: pg.Pool): void {
  const due = new WeakMap<pg.PoolClient, { at: number; step: number }>();
  pool.on("acquire", (client) => {
    const now = performance.now();
    const state = due.get(client);
    if (state === undefined) {
      due.set(client, { at: now + (REPLAN_AFTER_MS[0] as number), step: 0 });
    } else if (now >= state.at) {
      state.step = Math.min(state.step + 1, REPLAN_AFTER_MS.length - 1);
      state.at = now + (REPLAN_AFTER_MS[state.step] as number);
      // A broken connection fails the work queued behind it as well, which reports it.
      client.query("DISCARD PLANS").catch(() => {});
    }
  });
}

export function openPostgres(url: string, options: DialectOptions): DialectAdapter {
  const { connectionString, schema, options: operator } = parsePostgresUrl(url);
  const pool = new pg.Pool({
    connectionString,
    max: options.poolSize,
    types,
    connectionTimeoutMillis: 5000,
    options: sessionOptions(schema, options, operator ?? process.env.PGOPTIONS),
  });
  // An idle client that loses its connection must not crash the process; the next query reports it.
  pool.on("error", () => {});
  replanning(pool);
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  const suffix = schema ? `_${schema}` : "";
  const channels = {
    wakeup: `carehooks_wakeup${suffix}`.toLowerCase(),
    cache: `carehooks_cache${suffix}`.toLowerCase(),
  };
  const staleness = options.cacheStalenessMs ?? 1000;
  // Opened by the first wake-up or cache that listens: a CLI command opens none.
  const listener = new PgListener({
    connectionString,
    types,
    channels: [channels.wakeup, channels.cache],
    heartbeatMs: staleness / 2,
    deadAfterMs: staleness * DEAD_AFTER_STALENESS,
  });

  async function inLockedTransaction<T>(work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await pool.connect();
    try {
      await client.query("BEGIN");
      await client.query("SELECT pg_advisory_xact_lock($1)", [MIGRATION_LOCK]);
      const result = await work(client);
      await client.query("COMMIT");
      return result;
    } catch (error) {
      await client.query("ROLLBACK").catch(() => {});
      throw error;
    } finally {
      client.release();
    }
  }

  return {
    name: "postgres",
    db,
    async migrate(migrations: readonly Migration[]): Promise<number[]> {
      await inLockedTransaction(async (client) => {
        if (schema) await client.query(`CREATE SCHEMA IF NOT EXISTS "${schema}"`);
        await client.query(
          "CREATE TABLE IF NOT EXISTS schema_migration (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)",
        );
      });
      const applied: number[] = [];
      for (const migration of migrations) {
        const done = await inLockedTransaction(async (client) => {
          const found = await client.query("SELECT 1 FROM schema_migration WHERE version = $1", [migration.version]);
          if (found.rowCount) return false;
          await client.query("INSERT INTO schema_migration (version, name, applied_at) VALUES ($1, $2, $3)", [
            migration.version,
            migration.name,
            Date.now(),
          ]);
          await client.query(migration.sql);
          return true;
        });
        if (done) applied.push(migration.version);
      }
      return applied;
    },
    async preparedQuery<R>(name: string, text: string, values: readonly unknown[]): Promise<R[]> {
      return (await pool.query({ name, text, values: values as unknown[] })).rows as R[];
    },
    createBatch: options.createBatch ?? DEFAULT_CREATE_BATCH,
    async ping() {
      await pool.query("SELECT 1");
    },
    async now(db) {
      const { rows } = await sql<{
        now: number;
      }>`SELECT (extract(epoch from clock_timestamp()) * 1000)::bigint AS now`.execute(db);
      return rows[0]?.now as number;
    },
    // NO KEY: a concurrent insert of a delivery (its foreign key takes KEY SHARE) must not block or deadlock a claim.
    exclusiveWrites: false,
    wakeupSpacingMs: 10,
    lockSkipLocked: (query) => query.forNoKeyUpdate().skipLocked(),
    lockRows: (query) => query.forNoKeyUpdate(),
    createWakeup: () => wakeupOn(listener, channels.wakeup, pool),
    changes: changesOn(listener, channels.cache),
    writableCtes: true,
    isUnavailable(error) {
      const code = (error as { code?: unknown })?.code;
      if (typeof code === "string" && (UNAVAILABLE_CODES.has(code) || code.startsWith("08"))) return true;
      const message = (error as { message?: unknown })?.message;
      return (
        typeof message === "string" && /Connection terminated|timeout exceeded when trying to connect/.test(message)
      );
    },
    isInvalidText(error) {
      // NUL bytes and other characters PostgreSQL text cannot hold
      const code = (error as { code?: unknown })?.code;
      return code === "22021" || code === "22P05";
    },
    isUniqueViolation(error) {
      return (error as { code?: unknown })?.code === "23505";
    },
    isTransientAbort(error) {
      const code = (error as { code?: unknown })?.code;
      return code === "40P01" || code === "40001";
    },
    async close() {
      await listener.close();
      await db.destroy();
    },
  };
}
