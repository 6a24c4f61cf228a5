/**
 * The seed's workflow end to end, over real processes: carehooks on SQLite,
 * the example receiver (examples/receiver) registered as a webhook; an
 * appointment is booked and completed; the receiver verifies both webhooks,
 * fetches the details, and the reads are in the access log.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { freePort, run, type Server, startServer } from "./support/binary.js";
import { tempDir } from "./support/databases.js";
import { booking, until } from "./support/fixtures.js";

const RECEIVER = fileURLToPath(new URL("../../../examples/receiver/server.mjs", import.meta.url));
const KEY = "example-receiver-signing-key";

describe("the example receiver", () => {
  let server: Server | undefined;
  let receiver: ChildProcess | undefined;
  afterAll(async () => {
    receiver?.kill("SIGKILL");
    await server?.stop("SIGKILL");
  });

  it("verifies both webhooks of a booked and completed appointment, fetches the details, and leaves its reads in the audit log", async () => {
    const env = {
      CAREHOOKS_DATA_DIR: tempDir(),
      CAREHOOKS_ALLOW_HTTP: "true",
      CAREHOOKS_ALLOWED_TARGETS: "127.0.0.0/8",
    };
    const integrator = JSON.parse(
      (await run(["clients", "create", "--business", "Seed Clinic", "--scopes", "all", "--json"], env)).stdout,
    );
    server = await startServer(env);
    const port = await freePort();
    receiver = spawn(process.execPath, [RECEIVER], {
      env: {
        ...process.env,
        CAREHOOKS_URL: server.url,
        CAREHOOKS_CLIENT_ID: integrator.client_id,
        CAREHOOKS_CLIENT_SECRET: integrator.client_secret,
        CAREHOOKS_SIGNING_KEY: KEY,
        PORT: String(port),
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    const lines: Record<string, unknown>[] = [];
    receiver.stdout?.on("data", (chunk: Buffer) => {
      for (const line of chunk.toString().split("\n").filter(Boolean)) lines.push(JSON.parse(line));
    });
    await until(() => lines.find((line) => line.listening), 10_000, "the receiver to listen");

    const login = await fetch(`${server.url}/connect-auth/v1/account/login`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ client_id: integrator.client_id, client_secret: integrator.client_secret }),
    });
    const headers = {
      authorization: `Bearer ${((await login.json()) as { access_token: string }).access_token}`,
      "content-type": "application/json",
    };
    const api = (method: string, path: string, body?: unknown) =>
      fetch(`${server?.url}${path}`, {
        method,
        headers,
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      }).then(async (response) => ({ status: response.status, body: (await response.json()) as Record<string, any> }));

    const hook = await api("POST", "/notification/v1/connect/webhook/subscriptions", {
      endpoint: `http://127.0.0.1:${port}/webhooks/carehooks`,
      event_names: ["appointment.created", "appointment.updated"],
      signing_key: KEY,
    });
    expect(hook.status).toBe(201);
    const appointment = (await api("POST", "/dr/v1/business/appointments", booking)).body;
    const completed = await api("POST", `/dr/v1/business/appointments/${appointment.appointment_id}/complete`, {
      payment: { payment_status: "paid", amount: 500 },
    });
    expect(completed.body.status).toBe("CM");

    const handled = await until(
      () => {
        const done = lines.filter((line) => line.verified === true && line.fetched);
        return done.length >= 2 ? done : undefined;
      },
      15_000,
      "both webhooks to be handled",
    );
    // Two events of one appointment may arrive in either order (at least once, no ordering promised).
    expect(handled.map((line) => [line.event, line.action]).sort()).toEqual([
      ["appointment.created", "created"],
      ["appointment.updated", "completed"],
    ]);
    for (const line of handled)
      expect((line.fetched as { appointment_id: string }).appointment_id).toBe(appointment.appointment_id);

    const forged = await fetch(`http://127.0.0.1:${port}/webhooks/carehooks`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        "eka-webhook-signature": `t=${Math.floor(Date.now() / 1000)},v1=${"0".repeat(64)}`,
      },
      body: JSON.stringify({ event: "appointment.created" }),
    });
    expect(forged.status).toBe(400);
    await until(() => lines.find((line) => line.verified === false), 5000, "the forged request to be logged");

    // A test event (its ids are examples) is acknowledged without fetching: it succeeds at once, no retries.
    const test = await api("POST", `/notification/v1/connect/webhook/subscriptions/${hook.body.id}/test`, {});
    expect(test.status).toBe(202);
    await until(() => lines.find((line) => line.test === true), 10_000, "the test event to be acknowledged");
    const delivered = await until(
      async () => {
        const detail = await api("GET", `/notification/v1/connect/webhook/deliveries/${test.body.data.id}`);
        return detail.body.data.status === "succeeded" ? detail.body.data : undefined;
      },
      10_000,
      "the test delivery to succeed",
    );
    expect(delivered.attempts).toHaveLength(1);

    const logs = await api(
      "GET",
      `/audit/v1/access-logs?resource_id=${appointment.appointment_id}&client_id=${integrator.client_id}&outcome=allowed`,
    );
    expect(logs.body.data.length).toBeGreaterThanOrEqual(2);
  });
});
