// The reference loops' delivery loop (sqlite-loop.mjs, postgres-loop.mjs): the set-based design
// at its smallest, in one thread, with none of carehooks' features (no caps per endpoint, breaker,
// retry schedule, key rotation, attempt detail, metrics, logs or API). `concurrency` requests in
// flight; once half the slots are free, one claim takes up to the free slots; outcomes are written
// together every FLUSH_MS. The store gives `claim(lease, n)` → rows { id, event_id, payload,
// attempts } and `complete(outcomes)`; either may be synchronous. The reference end to end
// (ingest-loop.mjs) runs the same loop over the reference ingest's file, woken by its commits.
import { answerPeerCalls, enqueueBacklog, webhookPoster } from "./common.mjs";

const FLUSH_MS = 10;
/** How soon an empty claim is tried again (a backlog drain ends there). */
const IDLE_MS = 50;

/** Starts the loop; `wake()` claims at once if half the slots are free (new work was committed). */
export function startLoop({ concurrency, poster, claim, complete }) {
  const state = { inFlight: 0, outcomes: [], claiming: false, stopped: false };
  let timer;
  let idle;
  let leases = 0;

  // One flush at a time, each after the one before: a batch that fails goes back for the next.
  let flushing = Promise.resolve();
  const flush = () => {
    flushing = flushing.then(async () => {
      timer = undefined;
      const batch = state.outcomes;
      state.outcomes = [];
      if (batch.length === 0) return;
      try {
        await complete(batch);
      } catch (error) {
        process.stderr.write(`reference loop: writing ${batch.length} outcomes failed: ${error?.stack ?? error}\n`);
        state.outcomes.unshift(...batch);
        timer ??= setTimeout(flush, FLUSH_MS);
      }
    });
    return flushing;
  };
  const refill = async () => {
    if (state.stopped || state.claiming) return;
    const free = concurrency - state.inFlight;
    if (free < Math.ceil(concurrency / 2)) return;
    state.claiming = true;
    const lease = `l${process.pid}-${leases++}`;
    let rows;
    try {
      rows = await claim(lease, free);
    } catch (error) {
      process.stderr.write(`reference loop: claim failed: ${error?.stack ?? error}\n`);
      rows = [];
    } finally {
      state.claiming = false;
    }
    for (const row of rows) {
      state.inFlight += 1;
      void send(row, lease);
    }
    if (rows.length === 0 && state.inFlight === 0) idle = setTimeout(refill, IDLE_MS);
    else if (rows.length > 0) void refill(); // slots that freed while the claim ran
  };
  const send = async (row, lease) => {
    let code = null;
    let error = null;
    try {
      await poster.post({ eventId: row.event_id, body: row.payload });
      code = 200;
    } catch (e) {
      error = String(e.message ?? e);
    }
    state.inFlight -= 1;
    state.outcomes.push({ id: row.id, lease, n: row.attempts, ok: code === 200, code, error, at: Date.now() });
    timer ??= setTimeout(flush, FLUSH_MS);
    void refill();
  };
  void refill();
  return {
    wake() {
      clearTimeout(idle);
      void refill();
    },
    async stop() {
      state.stopped = true;
      clearTimeout(idle);
      while (state.inFlight > 0 || state.claiming) await new Promise((r) => setTimeout(r, 10));
      clearTimeout(timer);
      await flush();
    },
  };
}

/**
 * answerPeerCalls for a reference loop over `store`: open(args) creates its tables and returns
 * { insert(jobs), claim, complete, counts(), close() }.
 */
export function answerLoopCalls(open, version) {
  let store;
  let poster;
  let loop;
  answerPeerCalls(
    {
      async enqueue(args) {
        store = await open(args);
        return enqueueBacklog(args.events, args.tag, (jobs) => store.insert(jobs));
      },
      async start({ url, key, concurrency }) {
        poster = webhookPoster({ url, key, connections: concurrency, version: "bench-reference-loop" });
        loop = startLoop({ concurrency, poster, claim: store.claim, complete: store.complete });
        return true;
      },
      async close() {
        await loop?.stop();
        await poster?.close();
        if (!store) return {};
        const counts = await store.counts();
        await store.close();
        return { counts };
      },
    },
    { version },
  );
}
