// Child processes (every one registered, so every exit path ends them), free ports, CPU accounting.
import { execFileSync, fork, spawn } from "node:child_process";
import { createWriteStream, mkdirSync, readdirSync, readFileSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const children = new Set();

export function track(child, name) {
  child.benchName = name;
  children.add(child);
  child.once("exit", () => children.delete(child));
  return child;
}

function alive(child) {
  return child.exitCode === null && child.signalCode === null;
}

/** SIGTERM, then SIGKILL after graceMs. Resolves when the child has exited. */
export function stopChild(child, graceMs = 5000) {
  if (!child || !alive(child)) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      if (alive(child)) child.kill("SIGKILL");
    }, graceMs);
    child.once("exit", () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill("SIGTERM");
  });
}

export async function stopAll(graceMs = 5000) {
  await Promise.all([...children].map((child) => stopChild(child, graceMs)));
}

/** Last-resort synchronous kill (process exit handlers cannot wait). */
export function killAllNow() {
  for (const child of children) if (alive(child)) child.kill("SIGKILL");
}

export async function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/**
 * BENCH_CHILD_LOG=DIR: the child's whole output in DIR/<name>-<pid>.log, e.g. with
 * --node-flags=--trace-gc-nvp to see what each isolate's garbage collector does. A diagnostic:
 * a file that cannot be written is reported and the run goes on.
 */
function keepWholeOutput(child, dir, name) {
  const directory = path.resolve(dir);
  mkdirSync(directory, { recursive: true });
  const file = createWriteStream(path.join(directory, `${name}-${child.pid}.log`));
  file.on("error", (error) => process.stderr.write(`BENCH_CHILD_LOG: ${error.message}\n`));
  // Both streams into one file: it ends when the child has closed both, not when the first ends.
  child.stdout.pipe(file, { end: false });
  child.stderr.pipe(file, { end: false });
  child.once("close", () => file.end());
}

/** Spawns a node script; keeps the last lines of its output for error reports. */
export function spawnNode(args, { env, name, cwd }) {
  const child = spawn(process.execPath, args, { env, cwd, stdio: ["ignore", "pipe", "pipe"] });
  track(child, name);
  child.tail = [];
  child.errors = []; // log lines at error level or above (pino level ≥ 50), at most 50
  child.errorCount = 0;
  const keep = (chunk) => {
    for (const line of chunk.toString("utf8").split("\n")) {
      if (line.trim() === "") continue;
      const clipped = line.length > 2000 ? `${line.slice(0, 2000)}…` : line;
      child.tail.push(clipped.slice(0, 400));
      if (child.tail.length > 40) child.tail.shift();
      const level = Number(/"level":(\d+)/.exec(line)?.[1]);
      if (level >= 50) {
        child.errorCount += 1;
        if (child.errors.length < 50) child.errors.push(clipped);
      }
    }
  };
  child.stdout.on("data", keep);
  child.stderr.on("data", keep);
  if (process.env.BENCH_CHILD_LOG) keepWholeOutput(child, process.env.BENCH_CHILD_LOG, name);
  return child;
}

/**
 * A node script forked with an IPC channel, the child answering with answerCalls (ipc.mjs): resolves,
 * once the child says it is ready, to { child, ready, call(cmd, args) }. A call rejects when the child
 * answers with an error or exits first.
 */
export async function forkChild(script, args, name, nodeFlags = []) {
  const execArgv = [...process.execArgv, ...nodeFlags];
  const child = fork(script, args, { stdio: ["ignore", "inherit", "inherit", "ipc"], execArgv });
  track(child, name);
  const pending = new Map();
  let nextId = 1;
  const ready = await new Promise((resolve, reject) => {
    child.once("exit", (code, signal) => {
      const error = new Error(`${name} exited (${code ?? signal})`);
      reject(error);
      for (const p of pending.values()) p.reject(error);
      pending.clear();
    });
    child.on("message", (msg) => {
      if (msg.type === "ready") return resolve(msg.data);
      const p = pending.get(msg.id);
      if (!p) return;
      pending.delete(msg.id);
      if (msg.error !== undefined) p.reject(new Error(`${name}: ${msg.error}`));
      else p.resolve(msg.data);
    });
  });
  const call = (cmd, args = {}) =>
    new Promise((resolve, reject) => {
      if (!child.connected) return reject(new Error(`${name} is gone`));
      const id = nextId++;
      pending.set(id, { resolve, reject });
      child.send({ id, cmd, ...args });
    });
  return { child, ready, call };
}

/** The receiver child process: resolves to { child, ports, call(cmd, args) }. */
export async function startReceiver(portCount) {
  const receiver = await forkChild(path.join(HERE, "receiver.mjs"), [String(portCount)], "receiver");
  return { ...receiver, ports: receiver.ready.ports };
}

// ---- CPU accounting from /proc (Linux) ----

let clkTck = 100;
try {
  clkTck = Number(execFileSync("getconf", ["CLK_TCK"]).toString().trim()) || 100;
} catch {}

/**
 * A `/proc/<pid>/stat` (or `/proc/<pid>/task/<tid>/stat`) file: the command name, and the fields
 * after it, where f[0] is field 3 (state), f[1] the ppid and f[11..14] utime, stime, cutime and
 * cstime in clock ticks (fields 14-17). Throws when the process is gone.
 */
function readStat(file) {
  const stat = readFileSync(file, "utf8");
  return {
    comm: stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")")),
    f: stat.slice(stat.lastIndexOf(")") + 2).split(" "),
  };
}

/** CPU seconds (user + system) used so far by a pid, or undefined if it is gone. */
export function cpuSecondsOf(pid) {
  try {
    const { f } = readStat(`/proc/${pid}/stat`);
    return (Number(f[11]) + Number(f[12])) / clkTck;
  } catch {
    return undefined;
  }
}

/**
 * CPU seconds of every process whose command name is `name` (e.g. the PostgreSQL server): the live
 * ones, plus what exited children (backends of closed connections) left in their parent's
 * cutime/cstime, so the total never goes backwards when connections close.
 */
export function cpuSecondsOfComm(name) {
  const procs = new Map();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const { comm, f } = readStat(`/proc/${entry}/stat`);
      if (comm !== name) continue;
      procs.set(Number(entry), {
        ppid: Number(f[1]),
        own: Number(f[11]) + Number(f[12]),
        children: Number(f[13]) + Number(f[14]),
      });
    } catch {}
  }
  let ticks = 0;
  for (const p of procs.values()) {
    ticks += p.own;
    if (!procs.has(p.ppid)) ticks += p.children; // the top of the tree (the postmaster) holds reaped children
  }
  return ticks / clkTck;
}

/** Whole-machine busy and total jiffies (from /proc/stat) and this host's core count. */
export function machineTimes() {
  try {
    const line = readFileSync("/proc/stat", "utf8").split("\n")[0];
    const v = line.trim().split(/\s+/).slice(1).map(Number);
    const idle = v[3] + (v[4] ?? 0);
    const total = v.reduce((a, b) => a + b, 0);
    return { idle, total };
  } catch {
    return undefined;
  }
}

export const cores = os.availableParallelism?.() ?? os.cpus().length;

/**
 * Starts a CPU meter over named sources; stop() returns { cpu, cpuSeconds, seconds }: each source's CPU
 * use in % of one core over the interval (plus machineBusy, the machine's busy % of all cores), and
 * the CPU seconds each source used.
 * sources: { name: () => cpuSeconds | undefined }
 */
export function cpuMeter(sources) {
  const t0 = performance.now();
  const start = Object.fromEntries(Object.entries(sources).map(([k, f]) => [k, f()]));
  const m0 = machineTimes();
  return () => {
    const seconds = (performance.now() - t0) / 1000;
    const cpu = {};
    const cpuSeconds = {};
    for (const [k, f] of Object.entries(sources)) {
      const a = start[k];
      const b = f();
      if (a !== undefined && b !== undefined && seconds > 0) {
        cpu[k] = Math.round(((b - a) / seconds) * 100);
        cpuSeconds[k] = b - a;
      }
    }
    const m1 = machineTimes();
    if (m0 && m1 && m1.total > m0.total) {
      cpu.machineBusy = Math.round((1 - (m1.idle - m0.idle) / (m1.total - m0.total)) * 100);
    }
    return { cpu, cpuSeconds, seconds };
  };
}

export const selfCpuSeconds = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

/**
 * Every thread on the machine: `pid/tid` → { name (the process's, then the thread's comm), user, system,
 * waiting } in seconds (waiting: runnable but not on a core; undefined where it cannot be read). For
 * `BENCH_THREADS=1`: which thread of which process did the work.
 */
export function threadTimes() {
  const out = new Map();
  for (const pid of readdirSync("/proc")) {
    if (!/^\d+$/.test(pid)) continue;
    let tids;
    try {
      tids = readdirSync(`/proc/${pid}/task`);
    } catch {
      continue;
    }
    let processName = "";
    try {
      processName = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").slice(0, 4).join(" ").slice(-60);
    } catch {}
    for (const tid of tids) {
      try {
        const { comm, f } = readStat(`/proc/${pid}/task/${tid}/stat`);
        out.set(`${pid}/${tid}`, {
          name: `${processName} [${comm}]`,
          user: Number(f[11]) / clkTck,
          system: Number(f[12]) / clkTck,
          waiting: runQueueSeconds(`/proc/${pid}/task/${tid}/schedstat`),
        });
      } catch {}
    }
  }
  return out;
}

/**
 * Seconds a thread has spent runnable but waiting for a core (the second field of schedstat, in
 * ns); undefined where the kernel keeps no scheduler statistics or the thread is gone.
 */
function runQueueSeconds(file) {
  try {
    const ns = Number(readFileSync(file, "utf8").split(" ")[1]);
    return Number.isFinite(ns) ? ns / 1e9 : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The threads that used the most CPU between two `threadTimes()`, as lines of text: CPU (user,
 * system), then the time each spent runnable but waiting for a core, as a share of the span.
 */
export function threadReport(before, after, seconds, top = 12) {
  const rows = [];
  for (const [key, b] of after) {
    const a = before.get(key) ?? { user: 0, system: 0, waiting: 0 };
    const user = b.user - a.user;
    const system = b.system - a.system;
    // unknown unless read at both ends (a thread that exited between its stat and its schedstat)
    const waiting = a.waiting === undefined || b.waiting === undefined ? undefined : Math.max(0, b.waiting - a.waiting);
    if (user + system > 0) rows.push({ key, name: b.name, user, system, waiting });
  }
  rows.sort((x, y) => y.user + y.system - (x.user + x.system));
  const share = (s) => Math.round((s / seconds) * 100);
  return rows
    .slice(0, top)
    .map(
      (r) =>
        `  ${String(share(r.user + r.system)).padStart(4)}% (user ${share(r.user)}%, sys ${share(r.system)}%, waiting for a core ${r.waiting === undefined ? "n/a" : `${share(r.waiting)}%`})  ${r.key}  ${r.name}`,
    );
}
