import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { generateMasterKey } from "../src/domain/key-box.js";
import { SCOPES } from "../src/domain/scopes.js";
import { run, startServer } from "./support/binary.js";
import { createTestDatabase, dialects, type TestDatabase, tempDir } from "./support/databases.js";

const cleanups: (() => Promise<unknown>)[] = [];
afterAll(async () => {
  for (const cleanup of cleanups) await cleanup();
});

async function login(url: string, clientId: string, clientSecret: string): Promise<string> {
  const response = await fetch(`${url}/connect-auth/v1/account/login`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ client_id: clientId, client_secret: clientSecret }),
  });
  expect(response.status).toBe(200);
  return ((await response.json()) as { access_token: string }).access_token;
}

describe("the carehooks binary", () => {
  it("lists its commands", async () => {
    const help = await run(["--help"]);
    expect(help.code).toBe(0);
    for (const command of ["serve", "migrate", "clients", "healthcheck"]) expect(help.stdout).toContain(command);
  });

  it.each(dialects())(
    "creates a client, serves on %s, logs in and registers a webhook, then stops cleanly",
    async (dialect) => {
      const db: TestDatabase = await createTestDatabase(dialect);
      cleanups.push(() => db.drop());
      const env = {
        CAREHOOKS_DATABASE_URL: db.url,
        CAREHOOKS_DATA_DIR: db.dataDir,
        ...(dialect === "postgres"
          ? { CAREHOOKS_MASTER_KEY: generateMasterKey(), CAREHOOKS_JWT_SECRET: generateMasterKey() }
          : {}),
      };

      const created = await run(
        ["clients", "create", "--business", "Riverside Clinic", "--scopes", "all", "--json"],
        env,
      );
      expect(created.code, created.stderr).toBe(0);
      const client = JSON.parse(created.stdout);
      expect(Object.keys(client).sort()).toEqual(["business_id", "client_id", "client_secret", "scopes"]);
      expect(client.scopes).toEqual([...SCOPES]);

      const listed = await run(["clients", "list", "--json"], env);
      expect(JSON.parse(listed.stdout).map((c: { client_id: string }) => c.client_id)).toContain(client.client_id);

      const server = await startServer(env);
      const token = await login(server.url, client.client_id, client.client_secret);
      const registered = await fetch(`${server.url}/notification/v1/connect/webhook/subscriptions`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
        body: JSON.stringify({ endpoint: "https://receiver.example.com/hook", event_names: ["appointment.created"] }),
      });
      expect(registered.status).toBe(201);
      // With a client created beforehand, no demo business is made.
      expect(server.output()).not.toContain("Demo Clinic");

      const health = await run(["healthcheck", "--url", server.url]);
      expect(health.code).toBe(0);
      const ready = await run(["healthcheck", "--ready", "--url", server.url]);
      expect(ready.code).toBe(0);

      const revoked = await run(["clients", "revoke", client.client_id], env);
      expect(revoked.code).toBe(0);
      const after = await fetch(`${server.url}/notification/v1/connect/webhook/subscriptions`, {
        headers: { authorization: `Bearer ${token}` },
      });
      expect(after.status).toBe(401);

      expect(await server.stop("SIGTERM"), server.output()).toBe(0);
      const down = await run(["healthcheck", "--url", server.url, "--timeout", "1000"]);
      expect(down.code).toBe(1);
    },
  );

  it("creates a demo business on the first embedded start, prints its credentials once, and exits 0 on SIGINT", async () => {
    const dataDir = tempDir();
    const first = await startServer({ CAREHOOKS_DATA_DIR: dataDir });
    const output = first.output();
    const clientId = /client_id\s+(cli_\S+)/.exec(output)?.[1];
    const secret = /client_secret\s+(chs_\S+)/.exec(output)?.[1];
    expect(clientId).toBeDefined();
    expect(secret).toBeDefined();
    await login(first.url, clientId as string, secret as string);
    expect(await first.stop("SIGINT")).toBe(0);

    const second = await startServer({ CAREHOOKS_DATA_DIR: dataDir });
    expect(second.output()).not.toContain("client_secret");
    await login(second.url, clientId as string, secret as string);
    expect(await second.stop("SIGTERM")).toBe(0);
  });

  it("exits 0 within the grace period even while a client stalls mid-request", async () => {
    const server = await startServer({ CAREHOOKS_DATA_DIR: tempDir(), CAREHOOKS_SHUTDOWN_GRACE: "2s" });
    const { port } = new URL(server.url);
    const socket = net.connect(Number(port), "127.0.0.1");
    await new Promise((resolve) => socket.once("connect", resolve));
    socket.on("error", () => {});
    socket.write(
      'POST /connect-auth/v1/account/login HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{"client_id":',
    );
    await new Promise((resolve) => setTimeout(resolve, 200));
    const started = Date.now();
    expect(await server.stop("SIGTERM"), server.output()).toBe(0);
    expect(Date.now() - started).toBeLessThan(2000 + 3000);
    socket.destroy();
  });

  it("says why it cannot start (a taken port, another master key) and leaves no log behind when stopped", async () => {
    const dataDir = tempDir();
    const first = await startServer({ CAREHOOKS_DATA_DIR: dataDir });
    const taken = await run(["serve"], { CAREHOOKS_DATA_DIR: tempDir(), CAREHOOKS_PORT: new URL(first.url).port });
    expect(taken.code).toBe(1);
    expect(taken.stderr).toMatch(/EADDRINUSE/);
    expect(await first.stop("SIGTERM")).toBe(0);
    // The last connection to close (the checkpointer's) copied the log back and removed it.
    expect(fs.existsSync(path.join(dataDir, "carehooks.db-wal"))).toBe(false);
    const wrongKey = await run(["serve"], { CAREHOOKS_DATA_DIR: dataDir, CAREHOOKS_MASTER_KEY: generateMasterKey() });
    expect(wrongKey.code).toBe(2);
    expect(wrongKey.stderr).toMatch(/is not the key this database was set up with/);
  });

  it("refuses PostgreSQL without its secrets, and bad configuration, with exit code 2", async () => {
    const postgres = await run(["serve"], { CAREHOOKS_DATABASE_URL: "postgres://postgres@127.0.0.1:1/test" });
    expect(postgres.code).toBe(2);
    expect(postgres.stderr).toMatch(/CAREHOOKS_MASTER_KEY and CAREHOOKS_JWT_SECRET must be set/);
    const badPort = await run(["serve", "--port", "eighty"], { CAREHOOKS_DATA_DIR: tempDir() });
    expect(badPort.code).toBe(2);
    expect(badPort.stderr).toMatch(/CAREHOOKS_PORT/);
    const badScopes = await run(["clients", "create", "--business", "X", "--scopes", "root"], {
      CAREHOOKS_DATA_DIR: tempDir(),
    });
    expect(badScopes.code).toBe(1);
    expect(badScopes.stderr).toMatch(/unknown scope root/);
  });
});
