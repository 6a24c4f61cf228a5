// Peer: BullMQ + undici on Redis, one worker process with the engine's concurrency. Driven by the
// harness over IPC (common.mjs): enqueue, start, close. The queue has a random name and is
// obliterated at close.
import { Queue, Worker } from "bullmq";
import { answerPeerCalls, enqueueBacklog, versionOf, webhookPoster } from "./common.mjs";

// Completed jobs are kept (BullMQ's default), as carehooks keeps its delivery rows; a failed POST is
// retried with backoff, as a team would configure webhooks.
const JOB_OPTIONS = { attempts: 5, backoff: { type: "exponential", delay: 1000 } };

let queue;
let worker;
let poster;
let connection;
let failed = 0;

/** ioredis options from a redis:// URL; a Worker needs maxRetriesPerRequest null. */
function redisOptions(url) {
  const u = new URL(url);
  return {
    host: u.hostname,
    port: Number(u.port || 6379),
    username: u.username || undefined,
    password: u.password ? decodeURIComponent(u.password) : undefined,
    db: Number(u.pathname.slice(1) || 0),
    maxRetriesPerRequest: null,
  };
}

answerPeerCalls(
  {
    async enqueue({ redis, queueName, events, tag }) {
      connection = redisOptions(redis);
      queue = new Queue(queueName, { connection });
      return enqueueBacklog(events, tag, (jobs) =>
        queue.addBulk(jobs.map((data) => ({ name: "webhook", data, opts: JOB_OPTIONS }))),
      );
    },
    async start({ url, key, concurrency }) {
      poster = webhookPoster({ url, key, connections: concurrency, version: `bench-bullmq-${versionOf("bullmq")}` });
      worker = new Worker(queue.name, (job) => poster.post(job.data), { connection, concurrency });
      worker.on("failed", () => {
        failed += 1;
      });
      worker.on("error", (error) => process.stderr.write(`bullmq worker: ${error?.stack ?? error}\n`));
      return true;
    },
    async close() {
      await worker?.close(); // waits for the active jobs, so the counts below are final
      await poster?.close();
      if (!queue) return {};
      const counts = await queue.getJobCounts("completed", "failed", "waiting", "active", "delayed");
      await queue.obliterate({ force: true });
      await queue.close();
      return { counts, failedAttempts: failed };
    },
  },
  { version: versionOf("bullmq") },
);
