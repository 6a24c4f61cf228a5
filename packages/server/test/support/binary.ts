/** Runs the built `carehooks` binary as a child process, as an operator would. */
import { type ChildProcess, spawn } from "node:child_process";
import net from "node:net";
import { fileURLToPath } from "node:url";

export const BINARY = fileURLToPath(new URL("../../bin/carehooks.js", import.meta.url));

export interface RunResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

function cleanEnv(env: Record<string, string>): NodeJS.ProcessEnv {
  const base = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith("CAREHOOKS_")));
  return { ...base, CAREHOOKS_LOG_LEVEL: "warn", ...env };
}

export function run(args: string[], env: Record<string, string> = {}, timeoutMs = 30_000): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BINARY, ...args], { env: cleanEnv(env), stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk) => (stdout += chunk));
    child.stderr.on("data", (chunk) => (stderr += chunk));
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`carehooks ${args.join(" ")} timed out\n${stdout}\n${stderr}`));
    }, timeoutMs);
    child.on("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
    server.on("error", reject);
  });
}

export interface Server {
  readonly url: string;
  readonly child: ChildProcess;
  output(): string;
  /** Sends the signal and resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export async function startServer(env: Record<string, string>): Promise<Server> {
  const port = env.CAREHOOKS_PORT ? Number(env.CAREHOOKS_PORT) : await freePort();
  const child = spawn(process.execPath, [BINARY, "serve"], {
    env: cleanEnv({ CAREHOOKS_PORT: String(port), ...env }),
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout?.on("data", (chunk) => (output += chunk));
  child.stderr?.on("data", (chunk) => (output += chunk));
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`server exited with ${child.exitCode}:\n${output}`);
    try {
      if ((await fetch(`${url}/healthz`)).ok) break;
    } catch {}
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`server did not start:\n${output}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return {
    url,
    child,
    output: () => output,
    stop: async (signal = "SIGTERM") => {
      child.kill(signal);
      return exited;
    },
  };
}

export interface ClientCredentials {
  readonly client_id: string;
  readonly client_secret: string;
}

/** A business and an API client with every scope, made with `carehooks clients create` against `env`'s database. */
export async function createClient(env: Record<string, string>, business: string): Promise<ClientCredentials> {
  const created = await run(["clients", "create", "--business", business, "--scopes", "all", "--json"], env);
  if (created.code !== 0) throw new Error(`clients create exited ${created.code}:\n${created.stderr}`);
  return JSON.parse(created.stdout) as ClientCredentials;
}

/** An access token for `client` from the server at `url`. */
export async function accessToken(url: string, client: ClientCredentials): Promise<string> {
  const login = await fetch(`${url}/connect-auth/v1/account/login`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ client_id: client.client_id, client_secret: client.client_secret }),
  });
  return ((await login.json()) as { access_token: string }).access_token;
}
