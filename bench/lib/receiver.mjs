// The webhook receiver, run as a child process (fork) so its timestamps are not delayed by the
// load generator: node:http on 127.0.0.1, one or more ports, answers 200 at once.
// Each measurement sets a tag (the clinic_id its creates use), so deliveries left over from an earlier
// phase are answered but not counted. It verifies both signatures, de-duplicates on
// (port, path, webhook-id) and records the first receipt
// time of each event (the machine's monotonic clock in ms, sub-millisecond: stats.mjs's `now`).
// Controlled over IPC (answerCalls): reset, stats, waitFor, receipts, close.
import http from "node:http";
import { answerCalls } from "./ipc.mjs";
import { verifyEka, verifyStandard } from "./payload.mjs";
import { now } from "./stats.mjs";

const portCount = Number(process.argv[2] ?? 1);

let state;
function reset(key, tag) {
  state = {
    key,
    tag, // when set, only deliveries whose data.clinic_id is the tag count; others are strays
    stray: 0,
    seen: new Map(), // `${port}${path}|${webhook-id}` -> first receipt time
    byAppointment: new Map(), // appointment_id -> first receipt time (any port)
    events: new Set(),
    perTarget: new Map(), // `${port}${path}` -> unique deliveries
    requests: 0,
    duplicates: 0,
    sigOk: 0,
    sigBad: 0,
    unsigned: 0,
    bodyBytes: 0,
    first: undefined,
    last: undefined,
    nonJson: 0,
    connections: 0, // TCP connections accepted since the reset: a sender that keeps its connections alive opens few
  };
  waiters = [];
}
let waiters = [];

function stats() {
  return {
    requests: state.requests,
    deliveries: state.seen.size,
    events: state.events.size,
    duplicates: state.duplicates,
    sigOk: state.sigOk,
    sigBad: state.sigBad,
    unsigned: state.unsigned,
    nonJson: state.nonJson,
    stray: state.stray,
    avgBodyBytes: state.requests ? Math.round(state.bodyBytes / state.requests) : 0,
    connections: state.connections,
    first: state.first,
    last: state.last,
    perTarget: Object.fromEntries(state.perTarget),
  };
}

function checkWaiters() {
  if (waiters.length === 0) return;
  const n = state.seen.size;
  waiters = waiters.filter((w) => {
    if (n < w.count) return true;
    clearTimeout(w.timer);
    w.done();
    return false;
  });
}

function handle(port, req, res) {
  const chunks = [];
  req.on("data", (chunk) => chunks.push(chunk));
  req.on("end", () => {
    const t = now();
    const body = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks);
    const s = state;
    let data;
    try {
      data = JSON.parse(body.toString("utf8"))?.data;
    } catch {
      s.nonJson += 1;
    }
    if (s.tag !== undefined && data?.clinic_id !== s.tag) {
      // left over from an earlier phase (or not ours): answered, but not counted
      s.stray += 1;
      res.writeHead(200, { "content-type": "text/plain", "content-length": "2" });
      res.end("ok");
      return;
    }
    s.requests += 1;
    s.bodyBytes += body.length;
    const id = req.headers["webhook-id"];
    if (s.key) {
      const eka = req.headers["eka-webhook-signature"];
      const std = req.headers["webhook-signature"];
      if (eka === undefined && std === undefined) s.unsigned += 1;
      else if (verifyEka(s.key, eka, body) && verifyStandard(s.key, id, req.headers["webhook-timestamp"], std, body))
        s.sigOk += 1;
      else s.sigBad += 1;
    }
    const target = `${port}${req.url}`;
    const dedupe = `${target}|${id}`;
    if (s.seen.has(dedupe)) {
      s.duplicates += 1;
    } else {
      s.seen.set(dedupe, t);
      s.events.add(id);
      s.perTarget.set(target, (s.perTarget.get(target) ?? 0) + 1);
      if (s.first === undefined) s.first = t;
      s.last = t;
      const apt = data?.appointment_id;
      if (apt !== undefined && !s.byAppointment.has(apt)) s.byAppointment.set(apt, t);
      checkWaiters();
    }
    res.writeHead(200, { "content-type": "text/plain", "content-length": "2" });
    res.end("ok");
  });
}

reset(undefined);
const servers = [];
const ports = [];
for (let i = 0; i < portCount; i++) {
  const server = http.createServer();
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address();
  server.on("request", (req, res) => handle(port, req, res));
  server.on("connection", () => {
    state.connections += 1;
  });
  servers.push(server);
  ports.push(port);
}

answerCalls(
  {
    reset({ key, tag }) {
      reset(key, tag);
      return true;
    },
    stats,
    waitFor({ count, timeoutMs }) {
      if (state.seen.size >= count) return stats();
      return new Promise((resolve) => {
        const w = { count, done: () => resolve(stats()) };
        w.timer = setTimeout(() => {
          waiters = waiters.filter((x) => x !== w);
          resolve({ ...stats(), timedOut: true });
        }, timeoutMs);
        waiters.push(w);
      });
    },
    receipts: () => [...state.byAppointment],
    async close() {
      for (const server of servers) server.closeAllConnections?.();
      await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
      return true;
    },
  },
  { ports },
);
