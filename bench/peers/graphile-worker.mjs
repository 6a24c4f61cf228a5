// Peer: graphile-worker + undici on PostgreSQL, one worker process (`run`) with the engine's
// concurrency, default settings otherwise (no local queue, no batched completions). Driven by the
// harness over IPC (common.mjs): enqueue, start, close. Its tables live in a fresh schema, dropped
// at close.
import { Logger, makeWorkerUtils, run } from "graphile-worker";
import { answerPeerCalls, enqueueBacklog, versionOf, webhookPoster } from "./common.mjs";

// Warnings and errors only, as carehooks runs in the bench (CAREHOOKS_LOG_LEVEL=warn): the default
// logger writes a line per job.
const logger = new Logger(() => (level, message) => {
  if (level === "error" || level === "warning") process.stderr.write(`graphile-worker ${level}: ${message}\n`);
});

let options;
let utils;
let runner;
let poster;

answerPeerCalls(
  {
    async enqueue({ postgres, schema, events, tag }) {
      options = { connectionString: postgres, schema, logger };
      utils = await makeWorkerUtils(options);
      await utils.migrate();
      return enqueueBacklog(events, tag, (jobs) =>
        utils.addJobs(jobs.map((payload) => ({ identifier: "webhook", payload }))),
      );
    },
    async start({ url, key, concurrency }) {
      const version = `bench-graphile-worker-${versionOf("graphile-worker")}`;
      poster = webhookPoster({ url, key, connections: concurrency, version });
      runner = await run({
        ...options,
        concurrency,
        noHandleSignals: true, // answerPeerCalls stops it and drops the schema
        taskList: { webhook: (payload) => poster.post(payload) },
      });
      return true;
    },
    async close() {
      await runner?.stop(); // waits for the running jobs
      await poster?.close();
      if (!utils) return {};
      try {
        // graphile-worker deletes a job when it succeeds: what is left either failed or never ran
        const { rows } = await utils.withPgClient((client) =>
          client.query(
            `select count(*)::int as left, count(last_error)::int as failed from "${options.schema}"._private_jobs`,
          ),
        );
        return { counts: rows[0] };
      } finally {
        await utils.withPgClient((client) => client.query(`drop schema if exists "${options.schema}" cascade`));
        await utils.release();
      }
    },
  },
  { version: versionOf("graphile-worker") },
);
