// Reference loop on PostgreSQL (loop.mjs): the backlog in a schema of its own, one
// UPDATE … WHERE id IN (SELECT … FOR UPDATE SKIP LOCKED) RETURNING a claim, each flush's outcomes
// in one statement over arrays (the jobs updated and their attempt rows inserted), with
// synchronous_commit=off as carehooks' workers commit. The schema is dropped at close (by the
// harness too if this process could not).
import { pg, pgVersion } from "../lib/deps.mjs";
import { answerLoopCalls } from "./loop.mjs";

const schemaSql = (s) => `
CREATE SCHEMA "${s}";
CREATE TABLE "${s}".job (id bigserial PRIMARY KEY, event_id text NOT NULL, payload text NOT NULL,
  status text NOT NULL DEFAULT 'pending', lease text, attempts int NOT NULL DEFAULT 0, next_at bigint NOT NULL);
CREATE INDEX ON "${s}".job (next_at) WHERE status = 'pending';
CREATE TABLE "${s}".attempt (id bigserial PRIMARY KEY, job_id bigint NOT NULL, n int NOT NULL,
  status_code int, error text, at bigint NOT NULL);
CREATE INDEX ON "${s}".attempt (job_id);`;

answerLoopCalls(async ({ postgres, schema }) => {
  const pool = new pg.Pool({ connectionString: postgres, max: 4, options: "-c synchronous_commit=off" });
  await pool.query(schemaSql(schema));
  const claimSql = `UPDATE "${schema}".job SET status = 'in_flight', lease = $1, attempts = attempts + 1
    WHERE id IN (SELECT id FROM "${schema}".job WHERE status = 'pending' AND next_at <= $2
      ORDER BY next_at LIMIT $3 FOR UPDATE SKIP LOCKED)
    RETURNING id, event_id, payload, attempts`;
  const completeSql = `WITH o AS (
      SELECT * FROM unnest($1::bigint[], $2::text[], $3::boolean[], $4::int[], $5::int[], $6::text[], $7::bigint[])
        AS o(id, lease, ok, n, code, error, at)
    ), u AS (
      UPDATE "${schema}".job j SET status = CASE WHEN o.ok THEN 'succeeded' ELSE 'pending' END, lease = NULL,
        next_at = CASE WHEN o.ok THEN 0 ELSE $8::bigint END
      FROM o WHERE j.id = o.id AND j.lease = o.lease
    )
    INSERT INTO "${schema}".attempt (job_id, n, status_code, error, at) SELECT id, n, code, error, at FROM o`;
  const column = (outcomes, key) => outcomes.map((o) => o[key]);
  return {
    async insert(jobs) {
      await pool.query(
        `INSERT INTO "${schema}".job (event_id, payload, next_at) SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[])`,
        [jobs.map((j) => j.eventId), jobs.map((j) => JSON.stringify(j.payload)), jobs.map(() => Date.now())],
      );
    },
    async claim(lease, n) {
      const { rows } = await pool.query({ name: "claim", text: claimSql, values: [lease, Date.now(), n] });
      return rows;
    },
    async complete(outcomes) {
      const values = ["id", "lease", "ok", "n", "code", "error", "at"].map((k) => column(outcomes, k));
      await pool.query({ name: "complete", text: completeSql, values: [...values, Date.now() + 1000] });
    },
    async counts() {
      const { rows } = await pool.query(`SELECT status, count(*)::int AS n FROM "${schema}".job GROUP BY status`);
      return Object.fromEntries(rows.map((r) => [r.status, r.n]));
    },
    async close() {
      await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      await pool.end();
    },
  };
}, pgVersion);
