// What the two peer queues share: the backlog's jobs and the job itself. Each peer runs in a child
// process of its own (forkChild), one worker process as a team would run it, and is driven over IPC:
// enqueue (the whole backlog, in bulk), start (the worker, timed by the harness's drain scenario),
// close (the worker stopped, the queue or schema removed).
import { createRequire } from "node:module";
import { answerCalls } from "../lib/ipc.mjs";
import { appointmentEvent, benchIdentity } from "../lib/payload.mjs";
import { poolFor, postSigned } from "../lib/post.mjs";
import { now, round } from "../lib/stats.mjs";

/** One addBulk (one MULTI) or addJobs (one statement) per this many jobs, as a team importing a backlog would. */
const ENQUEUE_BATCH = 500;

/**
 * answerCalls for a peer. `close` first waits for an enqueue or start still running (an interrupt can
 * come at any point), so nothing is added to the queue or its schema after they are removed.
 */
export function answerPeerCalls({ enqueue, start, close }, ready) {
  let busy = Promise.resolve();
  const tracked = (fn) => (args) => {
    const done = fn(args);
    busy = Promise.allSettled([busy, done]);
    return done;
  };
  answerCalls(
    {
      enqueue: tracked(enqueue),
      start: tracked(start),
      async close() {
        await busy;
        return close();
      },
    },
    ready,
  );
}

/** A package's version, for the results. */
export function versionOf(pkg) {
  return createRequire(import.meta.url)(`${pkg}/package.json`).version;
}

/**
 * Stores `events` jobs with `add(batch)`; each job is what a team would store per webhook, the event
 * id and the payload (the engine's appointment.created event). Resolves to { enqueued, enqueueMs }.
 */
export async function enqueueBacklog(events, tag, add) {
  const identity = benchIdentity(tag);
  const jobs = Array.from({ length: events }, (_, i) => {
    const { eventId, event } = appointmentEvent({ ...identity, partnerId: `partner-apt-${i}` });
    return { eventId, payload: event };
  });
  const t0 = now();
  for (let i = 0; i < jobs.length; i += ENQUEUE_BATCH) await add(jobs.slice(i, i + ENQUEUE_BATCH));
  return { enqueued: jobs.length, enqueueMs: round(now() - t0) };
}

/**
 * The job: serialise the payload, sign it as the engine does, POST it over undici with `connections`
 * connections (the engine's per-endpoint cap). Throws unless 2xx, so the queue records a failure and
 * retries, as it would for a team.
 */
export function webhookPoster({ url, key, connections, version }) {
  const { origin, pathname } = new URL(url);
  const pool = poolFor(origin, connections);
  return {
    /** `body`, when given, is the payload already serialised (as stored): sent as it is. */
    async post({ eventId, payload, body }) {
      const status = await postSigned(pool, {
        path: pathname,
        key,
        eventId,
        body: body ?? JSON.stringify(payload),
        version,
      });
      if (status < 200 || status >= 300) throw new Error(`POST ${url}: HTTP ${status}`);
    },
    close: () => pool.close(),
  };
}
