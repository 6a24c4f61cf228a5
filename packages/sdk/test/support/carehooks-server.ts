/**
 * Runs the built `carehooks` binary as a child process on a free port and a
 * temporary data directory, as an operator would (the idea of
 * packages/server/test/support/binary.ts, kept here so the SDK tests stand alone).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const BINARY = fileURLToPath(new URL("../../../server/bin/carehooks.js", import.meta.url));

export interface ApiClientCredentials {
  readonly business_id: string;
  readonly client_id: string;
  readonly client_secret: string;
  readonly scopes: string[];
}

export interface RunningServer {
  readonly url: string;
  readonly dataDir: string;
  readonly env: Record<string, string>;
  output(): string;
  /** Creates an API client in this server's database (the `clients create` command). */
  createClient(business: string, scopes?: string): Promise<ApiClientCredentials>;
  stop(): Promise<void>;
}

function childEnv(env: Record<string, string>): NodeJS.ProcessEnv {
  const base = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith("CAREHOOKS_")));
  return { ...base, CAREHOOKS_LOG_LEVEL: "warn", ...env };
}

export function runCli(args: string[], env: Record<string, string>): Promise<{ code: number | null; stdout: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BINARY, ...args], { env: childEnv(env), stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk) => (stdout += chunk));
    child.stderr.on("data", (chunk) => (stderr += chunk));
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`carehooks ${args.join(" ")} timed out\n${stdout}\n${stderr}`));
    }, 30_000);
    child.on("exit", (code) => {
      clearTimeout(timer);
      if (code !== 0) reject(new Error(`carehooks ${args.join(" ")} exited ${code}\n${stdout}\n${stderr}`));
      else resolve({ code, stdout });
    });
  });
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
    server.on("error", reject);
  });
}

/** Starts `carehooks serve` and waits for `/healthz`. */
export async function startCarehooks(extraEnv: Record<string, string> = {}): Promise<RunningServer> {
  const dataDir = mkdtempSync(path.join(tmpdir(), "carehooks-sdk-"));
  const port = await freePort();
  const env = { CAREHOOKS_DATA_DIR: dataDir, CAREHOOKS_PORT: String(port), ...extraEnv };
  // Create the database (and secrets) first, so `clients create` and `serve` do not race for them.
  await runCli(["migrate"], env);
  const child: ChildProcess = spawn(process.execPath, [BINARY, "serve"], {
    env: childEnv(env),
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout?.on("data", (chunk) => (output += chunk));
  child.stderr?.on("data", (chunk) => (output += chunk));
  const exited = new Promise<void>((resolve) => child.on("exit", () => resolve()));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`carehooks exited with ${child.exitCode}:\n${output}`);
    try {
      if ((await fetch(`${url}/healthz`)).ok) break;
    } catch {}
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`carehooks did not start:\n${output}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return {
    url,
    dataDir,
    env,
    output: () => output,
    async createClient(business, scopes = "all") {
      const { stdout } = await runCli(["clients", "create", "--business", business, "--scopes", scopes, "--json"], env);
      return JSON.parse(stdout) as ApiClientCredentials;
    },
    async stop() {
      if (child.exitCode === null) {
        child.kill("SIGTERM");
        const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
        await exited;
        clearTimeout(timer);
      }
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
