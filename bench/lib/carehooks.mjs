// Starting and stopping carehooks deployments (SQLite in a temp dir, or a PostgreSQL schema),
// and the few API calls the benchmark needs.
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { BIN, pg, ROOT, undici } from "./deps.mjs";
import { freePort, spawnNode, stopChild } from "./procs.mjs";
import { now } from "./stats.mjs";

const { Pool } = undici;

function baseEnv(extra) {
  const env = {};
  for (const [k, v] of Object.entries(process.env))
    if (!k.startsWith("CAREHOOKS_") || k.startsWith("CAREHOOKS_BENCH_")) env[k] = v;
  return {
    ...env,
    CAREHOOKS_ALLOW_HTTP: "true",
    CAREHOOKS_ALLOWED_TARGETS: "127.0.0.0/8",
    CAREHOOKS_LOG_LEVEL: "warn",
    CAREHOOKS_SHUTDOWN_GRACE: "3s",
    ...extra,
  };
}

/** Runs a carehooks CLI command to completion; resolves to its stdout. */
export function cli(args, env, timeoutMs = 60_000) {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      [BIN, ...args],
      { env, cwd: ROOT, timeout: timeoutMs, maxBuffer: 1 << 20 },
      (error, stdout, stderr) => {
        if (error) reject(new Error(`carehooks ${args.join(" ")} failed: ${error.message}\n${stderr}`));
        else resolve(stdout);
      },
    );
  });
}

async function waitHealthy(child, port, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(
        `${child.benchName} exited (${child.exitCode ?? child.signalCode}) before it was healthy:\n${child.tail.join("\n")}`,
      );
    }
    try {
      const res = await undici.request(`http://127.0.0.1:${port}/healthz`, { headersTimeout: 1000, bodyTimeout: 1000 });
      await res.body.dump();
      if (res.statusCode === 200) return;
    } catch {}
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${child.benchName} not healthy within ${timeoutMs} ms:\n${child.tail.join("\n")}`);
}

/** Extra node flags for every `serve` process (e.g. --cpu-prof); set by run.mjs. */
export const serveNodeFlags = [];

/** One carehooks process (`serve --role …`) on a free port, waited for until /healthz answers; `bin`: another build's. */
export async function startServe(env, role, name, bin = BIN) {
  const port = await freePort();
  const child = spawnNode([...serveNodeFlags, bin, "serve", "--role", role], {
    env: { ...env, CAREHOOKS_PORT: String(port) },
    name,
    cwd: ROOT,
  });
  try {
    await waitHealthy(child, port);
  } catch (error) {
    await stopChild(child);
    throw error;
  }
  return { child, port, name, role };
}

/**
 * A fresh deployment's storage and an API client. kind "sqlite": a temp data dir; kind "postgres":
 * a fresh schema in `pgBase`. Nothing runs yet: call startServe with `env`.
 */
export async function prepareDeployment({ kind, pgBase, extraEnv = {}, businesses = ["Bench"] }) {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), "carehooks-bench-"));
  let env = baseEnv({ CAREHOOKS_DATA_DIR: dataDir, ...extraEnv });
  let schema;
  if (kind === "postgres") {
    schema = `bench_${randomBytes(6).toString("hex")}`;
    const url = new URL(pgBase);
    url.searchParams.set("schema", schema);
    env = {
      ...env,
      CAREHOOKS_DATABASE_URL: url.toString(),
      CAREHOOKS_MASTER_KEY: randomBytes(32).toString("hex"),
      CAREHOOKS_JWT_SECRET: randomBytes(32).toString("base64url"),
    };
    await cli(["migrate"], env);
  }
  const clients = [];
  for (const business of businesses) {
    clients.push(
      JSON.parse(await cli(["clients", "create", "--business", business, "--scopes", "all", "--json"], env)),
    );
  }
  const processes = [];
  const errors = []; // error-level log lines of every process of this deployment: { process, count, lines }
  const collect = (proc) => {
    if (proc.child.errorCount > 0)
      errors.push({ process: proc.name, count: proc.child.errorCount, lines: proc.child.errors });
  };
  return {
    kind,
    env,
    clients,
    dataDir,
    schema,
    processes,
    async serve(role, name, envOverride = {}, bin = BIN) {
      const proc = await startServe({ ...env, ...envOverride }, role, name, bin);
      processes.push(proc);
      return proc;
    },
    errors,
    async stop(proc) {
      await stopChild(proc.child);
      collect(proc);
      processes.splice(processes.indexOf(proc), 1);
    },
    async stopAll() {
      await Promise.all(processes.map((p) => stopChild(p.child)));
      for (const p of processes) collect(p);
      processes.length = 0;
    },
    async cleanup() {
      await this.stopAll();
      await rm(dataDir, { recursive: true, force: true });
      if (schema) await dropSchema(pgBase, schema);
    },
  };
}

export async function dropSchema(pgBase, schema) {
  const url = new URL(pgBase);
  url.searchParams.delete("schema");
  const client = new pg.Client({ connectionString: url.toString() });
  try {
    await client.connect();
    await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  } finally {
    await client.end().catch(() => {});
  }
}

/** Is a PostgreSQL server reachable at this URL? */
export async function pgReachable(pgBase) {
  const url = new URL(pgBase);
  url.searchParams.delete("schema");
  const client = new pg.Client({ connectionString: url.toString(), connectionTimeoutMillis: 3000 });
  try {
    await client.connect();
    const { rows } = await client.query("SHOW server_version");
    return rows[0].server_version;
  } catch {
    return undefined;
  } finally {
    await client.end().catch(() => {});
  }
}

/** A small API client over one undici Pool. */
/** Per-webhook delivery settings every bench webhook is created with (`--ordering`). */
let webhookSettings = {};
export function setWebhookSettings(settings) {
  webhookSettings = settings;
}

export class Api {
  constructor(port, connections = 32) {
    this.origin = `http://127.0.0.1:${port}`;
    this.pool = new Pool(this.origin, { connections, pipelining: 1 });
    this.token = undefined;
  }

  async call(method, path, body, okStatus = [200, 201, 202]) {
    const headers = { "content-type": "application/json" };
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    const res = await this.pool.request({
      method,
      path,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.body.text();
    if (!okStatus.includes(res.statusCode))
      throw new Error(`${method} ${path} → ${res.statusCode} ${text.slice(0, 300)}`);
    return JSON.parse(text);
  }

  async login({ client_id, client_secret }) {
    const answer = await this.call("POST", "/connect-auth/v1/account/login", { client_id, client_secret });
    this.token = answer.access_token;
  }

  createWebhook(endpoint, signingKey) {
    return this.call("POST", "/notification/v1/connect/webhook/subscriptions", {
      endpoint,
      event_names: ["appointment.created"],
      signing_key: signingKey,
      ...webhookSettings,
    });
  }

  /** Creates one appointment (clinicId tags the measurement it belongs to); resolves to { id, sent, commit } (monotonic ms, stats.mjs's `now`). */
  async createAppointment(i, clinicId = "cln_bench_main") {
    const sent = now();
    const answer = await this.call("POST", "/dr/v1/business/appointments", {
      doctor_id: `doc_bench_${i % 17}`,
      patient_id: `pat_bench_${i}`,
      clinic_id: clinicId,
      partner_appointment_id: `partner-apt-${i}`,
      start_time: "2026-12-01T09:00:00Z",
      end_time: "2026-12-01T09:30:00Z",
    });
    const commit = now();
    return { id: answer.appointment_id, sent, commit };
  }

  async readyz() {
    const res = await this.pool.request({ method: "GET", path: "/readyz" });
    return JSON.parse(await res.body.text());
  }

  close() {
    return this.pool.close();
  }
}
