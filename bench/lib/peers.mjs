// The harness's side of the peer queues (bench/peers/): each drains the same backlog to the same
// receiver with the engine's concurrency, timed by the same drain scenario as carehooks.
import { randomBytes } from "node:crypto";
import net from "node:net";
import { fileURLToPath } from "node:url";
import { Api, dropSchema } from "./carehooks.mjs";
import { CLOSE_GRACE_MS } from "./ipc.mjs";
import { cpuSecondsOf, cpuSecondsOfComm, forkChild, stopChild } from "./procs.mjs";
import { apiOnlyCreates, createMany, drain, newTag, warmedEndToEndRuns } from "./scenarios.mjs";
import { sleep } from "./stats.mjs";

const script = (name) => fileURLToPath(new URL(`../peers/${name}.mjs`, import.meta.url));

/** Flags for `node` in every peer and reference process (`--peer-node-flags`); none: Node's defaults. */
export const peerNodeFlags = [];

/** Peers running now: { child, leftover } (leftover removes what the child may have left behind). */
const running = new Set();

/** Closes every running peer (it removes its queue or schema) and waits for it, before the harness kills children. */
export async function stopPeers() {
  await Promise.all([...running].map(stopPeer));
}

async function stopPeer(peer) {
  await Promise.race([peer.child.call("close").catch(() => {}), sleep(CLOSE_GRACE_MS)]);
  await stopChild(peer.child.child);
  await peer.leftover?.().catch(() => {});
  running.delete(peer);
}

/** The Redis server's version, or undefined when nothing answers at `url` within 3 s. */
export function redisReachable(url) {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    let text = "";
    const socket = net.connect({ host: hostname, port: Number(port || 6379) });
    const done = (version) => {
      socket.destroy();
      resolve(version);
    };
    socket.setTimeout(3000, () => done(undefined));
    socket.on("error", () => done(undefined));
    socket.on("connect", () => socket.write("INFO server\r\n"));
    socket.on("data", (chunk) => {
      text += chunk;
      const version = /redis_version:([^\r\n]+)/.exec(text)?.[1];
      if (version) done(version);
      else if (text.startsWith("-")) done(undefined); // an error answer, e.g. NOAUTH
    });
  });
}

/**
 * One peer's backlog drain: the child enqueues `events` jobs in bulk, then the drain scenario starts
 * its worker and waits for the receiver to have every event. `store` is the peer's own arguments
 * (where its queue lives); `storeCpu` names the database's server processes for the CPU figures.
 */
async function peerDrain({
  peer,
  store,
  storeCpu,
  leftover,
  receiver,
  key,
  url,
  events,
  concurrency,
  timeoutMs,
  cpuSources,
}) {
  const child = await forkChild(script(peer), [], peer, peerNodeFlags);
  const entry = { child, leftover };
  running.add(entry);
  try {
    const tag = newTag(peer);
    const enqueued = await child.call("enqueue", { ...store, events, tag });
    const d = await drain({
      receiver,
      key,
      tag,
      expected: events,
      timeoutMs,
      cpuSources: storeCpu ? { ...cpuSources, [storeCpu]: () => cpuSecondsOfComm(storeCpu) } : cpuSources,
      startDispatcher: async () => {
        await child.call("start", { url, key, concurrency });
        return { worker: () => cpuSecondsOf(child.child.pid) };
      },
    });
    const closed = await child.call("close");
    return { ...d, version: child.ready.version, workerProcesses: 1, concurrency, ...enqueued, ...closed };
  } finally {
    await stopPeer(entry);
  }
}

/** BullMQ on Redis `redis`, in a queue of its own (obliterated at the end). */
export function bullmqDrain({ redis, ...rest }) {
  const queueName = `carehooks-bench-${randomBytes(6).toString("hex")}`;
  return peerDrain({ ...rest, peer: "bullmq", store: { redis, queueName }, storeCpu: "redis-server" });
}

/**
 * The reference loop on SQLite (peers/sqlite-loop.mjs): the set-based design at its smallest, on a
 * SQLite file of its own, in its one process (no database server to count).
 */
export function sqliteLoopDrain(rest) {
  return peerDrain({ ...rest, peer: "sqlite-loop", store: {} });
}

/** The reference loop on PostgreSQL `postgres` (peers/postgres-loop.mjs), in a fresh schema dropped at the end. */
export function postgresLoopDrain({ postgres, ...rest }) {
  return postgresPeerDrain({ ...rest, postgres, peer: "postgres-loop", prefix: "bench_loop" });
}

/** graphile-worker on PostgreSQL `postgres`, in a fresh schema dropped at the end. */
export function graphileDrain({ postgres, ...rest }) {
  return postgresPeerDrain({ ...rest, postgres, peer: "graphile-worker", prefix: "bench_gw" });
}

/** A peer on PostgreSQL, in a fresh schema `<prefix>_<random>` that the harness drops too if the child could not. */
function postgresPeerDrain({ postgres, peer, prefix, ...rest }) {
  const schema = `${prefix}_${randomBytes(6).toString("hex")}`;
  const url = new URL(postgres);
  url.searchParams.delete("schema");
  return peerDrain({
    ...rest,
    peer,
    store: { postgres: url.toString(), schema },
    storeCpu: "postgres",
    leftover: () => dropSchema(postgres, schema),
  });
}

/** Runs `use(child, api)` against a fresh reference ingest (peers/ingest-loop.mjs), logged in; stops it after. */
async function withIngestLoop(use) {
  const child = await forkChild(script("ingest-loop"), [], "ingest-loop", peerNodeFlags);
  const entry = { child };
  running.add(entry);
  try {
    const { port } = await child.call("start");
    const api = new Api(port, 64);
    await api.login({ client_id: "bench", client_secret: "bench" });
    try {
      return { ...(await use(child, api)), version: child.ready.version };
    } finally {
      await api.close();
    }
  } finally {
    await stopPeer(entry);
  }
}

/**
 * The reference ingest (peers/ingest-loop.mjs): `warm` creates, then the API-only scenario's
 * `events` creates with the same client and concurrency as carehooks' API-only run.
 */
export function ingestLoopCreates({ events, warm, concurrency }) {
  return withIngestLoop(async (child, api) => {
    const warmed = await createMany(api, warm, concurrency, 800_000_000);
    if (warmed.errors.length > 0)
      throw new Error(`reference ingest: ${warmed.errors.length} warm-up creates failed: ${warmed.errors[0]}`);
    const run = await apiOnlyCreates({
      api,
      events,
      concurrency,
      cpuSources: { server: () => cpuSecondsOf(child.child.pid) },
      offset: 3_000_000,
    });
    if (run.createErrors > 0)
      throw new Error(`reference ingest: ${run.createErrors} creates failed: ${run.firstError}`);
    return run;
  });
}

/**
 * The reference end to end (peers/ingest-loop.mjs with its delivery loop started): carehooks' end-to-end
 * scenario, fan-out 1, against the reference ingest and the reference loop sharing one thread and one
 * file: delivered to `url` `inFlight` at a time; the other options (receiver, key, warm, runs,
 * events, concurrency, timeoutMs) are warmedEndToEndRuns', so the runs are carehooks' (best kept).
 */
export function ingestLoopEndToEnd({ url, inFlight, cpuSources, ...runOptions }) {
  return withIngestLoop(async (child, api) => {
    await child.call("deliver", { url, key: runOptions.key, concurrency: inFlight });
    const measured = await warmedEndToEndRuns({
      ...runOptions,
      api,
      cpuSources: () => ({ ...cpuSources, server: () => cpuSecondsOf(child.child.pid) }),
      offset: 4_000_000,
      after: (run) => {
        const wrong = run.duplicates + run.strays + run.signaturesBad + run.unsigned;
        if (run.createErrors > 0 || !run.complete || wrong > 0)
          throw new Error(
            `reference end to end: ${run.createErrors} creates failed (${run.firstError ?? ""}), ${run.delivered}/${run.expected} delivered, ${wrong} duplicate, stray or badly signed`,
          );
      },
    });
    // What the reference did: its deliveries and attempts, and that it claimed nothing before its create was on disk.
    const stats = await child.call("finish");
    if (stats.claimedUnsynced > 0)
      throw new Error(
        `reference end to end: claimed ${stats.claimedUnsynced} deliveries before their creates were on disk`,
      );
    return { ...measured, stats };
  });
}
