// The raw-POST baseline's sender, a child process like the peer queues' workers, so the limit is
// measured the same way they are: a process of its own that only sends, beside the receiver's.
// `connections` requests kept in flight per port, each a fresh signed body. Controlled over IPC
// (answerCalls): start (warm-up: sent, not counted), measure (counting from now), stop, close.
import { undiciVersion } from "./deps.mjs";
import { answerCalls } from "./ipc.mjs";
import { appointmentPayload } from "./payload.mjs";
import { poolFor, postSigned } from "./post.mjs";
import { now } from "./stats.mjs";

let run;

answerCalls({
  start({ ports, connections, key, identity }) {
    const pools = ports.map((port) => poolFor(`http://127.0.0.1:${port}`, connections));
    run = { pools, phase: "warmup", counted: 0, errors: 0, t0: 0 };
    const r = run;
    r.loops = pools.flatMap((pool, p) =>
      Array.from({ length: connections }, async (_, c) => {
        while (r.phase !== "stop") {
          const { eventId, body } = appointmentPayload({ ...identity, partnerId: `partner-apt-${p}-${c}` });
          try {
            const status = await postSigned(pool, {
              path: `/hook/raw-${p}`,
              key,
              eventId,
              body,
              version: `bench-undici-${undiciVersion}`,
            });
            if (status === 200 && r.phase === "measure") r.counted += 1;
          } catch {
            r.errors += 1;
          }
        }
      }),
    );
    return true;
  },
  measure() {
    run.phase = "measure";
    run.counted = 0;
    run.t0 = now();
    return true;
  },
  async stop() {
    const requests = run.counted;
    const elapsedMs = now() - run.t0;
    run.phase = "stop";
    await Promise.all(run.loops);
    await Promise.all(run.pools.map((pool) => pool.close()));
    return { requests, elapsedMs, errors: run.errors };
  },
  close() {},
});
