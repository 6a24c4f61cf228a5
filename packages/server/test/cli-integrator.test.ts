import { type ChildProcess, spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { Webhook as StandardWebhook } from "standardwebhooks";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BINARY, freePort, run, type Server, startServer } from "./support/binary.js";
import { tempDir } from "./support/databases.js";
import { booking, until } from "./support/fixtures.js";
import { type Receiver, startReceiver } from "./support/receiver.js";

describe("the integrator commands against a running server", () => {
  const configHome = tempDir("carehooks-cli-config-");
  const dataDir = tempDir();
  let port: number;
  let server: Server;
  let receiver: Receiver;
  let serverEnv: Record<string, string>;
  let cliEnv: Record<string, string>;
  let token: string;
  const children: ChildProcess[] = [];

  beforeAll(async () => {
    port = await freePort();
    serverEnv = {
      CAREHOOKS_DATA_DIR: dataDir,
      CAREHOOKS_PORT: String(port),
      CAREHOOKS_ALLOW_HTTP: "true",
      CAREHOOKS_ALLOWED_TARGETS: "127.0.0.0/8",
      CAREHOOKS_RETRY_SCHEDULE: "100ms,100ms",
      CAREHOOKS_POLL_INTERVAL: "200ms",
      // Every CLI process logs in anew: these tests run more of them in a minute than the default allows.
      CAREHOOKS_LOGIN_RATE_LIMIT: "1000",
    };
    const client = JSON.parse(
      (await run(["clients", "create", "--business", "CLI Clinic", "--scopes", "all", "--json"], serverEnv)).stdout,
    );
    server = await startServer(serverEnv);
    receiver = await startReceiver();
    cliEnv = { XDG_CONFIG_HOME: configHome };
    const login = await run(
      [
        "login",
        "--url",
        server.url,
        "--client-id",
        client.client_id,
        "--client-secret",
        client.client_secret,
        "--json",
      ],
      cliEnv,
    );
    expect(login.code, login.stderr).toBe(0);
    const answer = await fetch(`${server.url}/connect-auth/v1/account/login`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ client_id: client.client_id, client_secret: client.client_secret }),
    });
    token = ((await answer.json()) as { access_token: string }).access_token;
  });
  afterAll(async () => {
    for (const child of children) child.kill("SIGKILL");
    await server?.stop("SIGKILL");
    await receiver?.close();
  });

  const cli = async (...args: string[]) => {
    const result = await run(args, cliEnv);
    expect(result.code, `${args.join(" ")}: ${result.stderr}`).toBe(0);
    return result.stdout;
  };
  const book = async () =>
    (
      (await (
        await fetch(`${server.url}/dr/v1/business/appointments`, {
          method: "POST",
          headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
          body: JSON.stringify(booking),
        })
      ).json()) as { appointment_id: string }
    ).appointment_id;

  /** `carehooks listen … --json` in a child process: its JSON lines as they come, and a wait for its connection. */
  const startListen = (...args: string[]) => {
    const child = spawn(process.execPath, [BINARY, "listen", ...args, "--json"], {
      env: { ...process.env, ...cliEnv, CAREHOOKS_URL: "", CAREHOOKS_CLIENT_ID: "", CAREHOOKS_CLIENT_SECRET: "" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    children.push(child);
    const lines: Record<string, unknown>[] = [];
    let stderr = "";
    child.stderr?.on("data", (chunk) => (stderr += chunk));
    child.stdout?.on("data", (chunk: Buffer) => {
      for (const line of chunk.toString().split("\n").filter(Boolean)) lines.push(JSON.parse(line));
    });
    return { child, lines, connected: () => until(() => stderr.includes("connected"), 10_000, "listen to connect") };
  };

  it("stores the profile privately", () => {
    const file = path.join(configHome, "carehooks", "profiles.json");
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    expect(JSON.parse(fs.readFileSync(file, "utf8")).profiles.default.url).toBe(server.url);
  });

  // About 25 CLI processes in a row, each a Node start: 18 s alone, more beside the rest of the suite.
  it("manages webhooks and inspects, resends and recovers deliveries", { timeout: 90_000 }, async () => {
    const created = JSON.parse(
      await cli("webhooks", "create", "--url", receiver.url, "--events", "appointment.created", "--json"),
    );
    expect(created.id).toMatch(/^wh_/);
    // No key given: the server generated one, shown this once.
    expect(created.signing_key).toMatch(/^whsec_/);
    const unsigned = JSON.parse(
      await cli(
        "webhooks",
        "create",
        "--url",
        `${receiver.url}/unsigned`,
        "--event",
        "appointment.created",
        "--event",
        "appointment.updated",
        "--no-signing-key",
        "--json",
      ),
    );
    expect(unsigned.signing_key).toBeUndefined();
    expect(JSON.parse(await cli("webhooks", "get", unsigned.id, "--json"))).toMatchObject({
      signed: false,
      event_names: ["appointment.created", "appointment.updated"],
    });
    await cli("webhooks", "delete", unsigned.id);
    expect(await cli("webhooks", "list")).toMatch(
      new RegExp(`${created.id}\\s+active\\s+appointment.created\\s+${receiver.url}`),
    );

    await book();
    await receiver.waitFor(1);
    let rows: { id: string; status: string }[] = [];
    const deadline = Date.now() + 10_000;
    while (!(rows.length === 1 && rows[0]?.status === "succeeded")) {
      rows = JSON.parse(await cli("deliveries", "list", created.id, "--json"));
      if (Date.now() > deadline) throw new Error("delivery did not succeed");
    }
    const shown = JSON.parse(await cli("deliveries", "show", rows[0]!.id, "--json"));
    expect(shown.attempts[0].response_status).toBe(200);
    expect(await cli("deliveries", "show", rows[0]!.id)).toMatch(/HTTP 200/);

    await cli("deliveries", "resend", rows[0]!.id);
    await receiver.waitFor(2);
    await cli("webhooks", "test", created.id, "--event", "appointment.created");
    await receiver.waitFor(3);

    receiver.answer = () => ({ status: 500 });
    const since = new Date(Date.now() - 1000).toISOString();
    await book();
    const failedDeadline = Date.now() + 10_000;
    while (JSON.parse(await cli("deliveries", "list", created.id, "--status", "failed", "--json")).length === 0) {
      if (Date.now() > failedDeadline) throw new Error("no failed delivery");
    }
    receiver.answer = () => ({ status: 200 });
    const task = JSON.parse(await cli("deliveries", "recover", created.id, "--since", since, "--json"));
    expect(task).toMatchObject({ state: "succeeded", done: 1 });

    const events = JSON.parse(await cli("events", "list", "--json"));
    expect(events.length).toBeGreaterThanOrEqual(2);
    expect((await cli("webhooks", "disable", created.id)).trim()).toMatch(/disabled/);
    expect((await cli("webhooks", "enable", created.id)).trim()).toMatch(/active/);

    // Delivery settings: set, shown, and cleared back to the server's defaults.
    await cli(
      "webhooks",
      "update",
      created.id,
      "--ordering",
      "per_resource",
      "--max-in-flight",
      "2",
      "--rate-limit",
      "50",
    );
    expect(JSON.parse(await cli("webhooks", "get", created.id, "--json"))).toMatchObject({
      ordering: "per_resource",
      max_in_flight: 2,
      rate_limit: 50,
    });
    await cli("webhooks", "update", created.id, "--max-in-flight", "default", "--rate-limit", "none");
    expect(JSON.parse(await cli("webhooks", "get", created.id, "--json"))).toMatchObject({
      max_in_flight: null,
      rate_limit: null,
    });
    // Options: filter, headers, timeout and retry schedule, set and cleared.
    await cli(
      "webhooks",
      "update",
      created.id,
      "--filter",
      '{"data.clinic_id":{"$in":["clinic-7"]}}',
      "--header",
      "X-Gateway-Token: gw-1",
      "--header",
      "x-region:south",
      "--timeout",
      "5s",
      "--retry-schedule",
      "10s,1m",
    );
    expect(JSON.parse(await cli("webhooks", "get", created.id, "--json"))).toMatchObject({
      filter: { "data.clinic_id": { $in: ["clinic-7"] } },
      headers: { "x-gateway-token": "********", "x-region": "********" },
      timeout: 5,
      retry_schedule: [10, 60],
    });
    await cli("webhooks", "update", created.id, "--filter", "none", "--clear-headers", "--timeout", "default");
    await cli("webhooks", "update", created.id, "--retry-schedule", "none");
    expect(JSON.parse(await cli("webhooks", "get", created.id, "--json"))).toMatchObject({
      filter: null,
      headers: null,
      timeout: null,
      retry_schedule: [],
    });
    await expect(cli("webhooks", "update", created.id, "--filter", "{clinic}")).rejects.toThrow(
      /--filter must be JSON/,
    );
    await cli("webhooks", "update", created.id, "--events", "appointment.created,appointment.updated");
    await cli("webhooks", "delete", created.id);
    expect(await cli("webhooks", "list")).toMatch(/no webhooks/);
  });

  it("generates signing keys, prints them once, and shows one only through webhooks secret", async () => {
    const created = await cli(
      "webhooks",
      "create",
      "--url",
      `${receiver.url}/keyed`,
      "--events",
      "appointment.created",
      "--generate-signing-key",
    );
    const [, id, key] = /^created (wh_\S+)\nsigning key .*: (whsec_\S+)$/m.exec(created.trim()) ?? [];
    expect(key, created).toMatch(/^whsec_/);
    expect(await cli("webhooks", "list")).not.toContain(key);
    expect((await cli("webhooks", "secret", id as string)).trim()).toBe(key);
    const rotated = JSON.parse(await cli("webhooks", "update", id as string, "--generate-signing-key", "--json"));
    expect(rotated.signing_key).toMatch(/^whsec_/);
    const secret = JSON.parse(await cli("webhooks", "secret", id as string, "--json"));
    expect(secret).toMatchObject({ signing_key: rotated.signing_key, previous_signing_key: key });
    await cli("webhooks", "delete", id as string);

    // ed25519: a pair the server makes; only its public key is ever printed.
    const paired = await cli(
      "webhooks",
      "create",
      "--url",
      `${receiver.url}/paired`,
      "--event",
      "appointment.created",
      "--signature-scheme",
      "ed25519",
    );
    const [, pairedId, publicKey] = /^created (wh_\S+)\npublic key .*: (whpk_\S+)$/m.exec(paired.trim()) ?? [];
    expect(publicKey, paired).toMatch(/^whpk_/);
    expect(JSON.parse(await cli("webhooks", "get", pairedId as string, "--json"))).toMatchObject({
      signature_scheme: "ed25519",
      public_key: publicKey,
    });
    await expect(cli("webhooks", "secret", pairedId as string)).rejects.toThrow(/ed25519/);
    await cli("webhooks", "delete", pairedId as string);
  });

  it("triggers real events whose records a receiver can fetch", { timeout: 60_000 }, async () => {
    const target = await startReceiver();
    try {
      const hook = JSON.parse(
        await cli(
          "webhooks",
          "create",
          "--url",
          target.url,
          "--event",
          "appointment.created,appointment.updated,prescription.created,prescription.updated",
          "--json",
        ),
      );
      const made: Record<string, string> = {};
      for (const event of [
        "appointment.created",
        "appointment.updated",
        "prescription.created",
        "prescription.updated",
      ]) {
        const answer = JSON.parse(await cli("trigger", event, "--json"));
        expect(answer.event).toBe(event);
        made[event] = answer.appointment_id ?? answer.prescription_id;
      }
      // The updates made their record first: 2 + 1 events for appointments, the same for prescriptions.
      const requests = await target.waitFor(6, 15_000);
      const events = requests.map(
        (request) => JSON.parse(request.body) as { event: string; test?: boolean; data: Record<string, string> },
      );
      expect(events.every((event) => event.test === undefined)).toBe(true);
      const completed = events.find((event) => event.event === "appointment.updated");
      expect(completed?.data).toMatchObject({ appointment_id: made["appointment.updated"], action: "completed" });
      // A receiver can fetch what the events name.
      const appointment = await fetch(`${server.url}/dr/v1/business/appointments/${made["appointment.updated"]}`, {
        headers: { authorization: `Bearer ${token}` },
      });
      expect(appointment.status).toBe(200);
      const unknown = await run(["trigger", "appointment.deleted"], cliEnv);
      expect(unknown.code).not.toBe(0);
      expect(unknown.stderr).toMatch(/choose one of appointment.created, appointment.updated/);
      await cli("webhooks", "delete", hook.id);
    } finally {
      await target.close();
    }
  });

  it("explains a missing profile and an API error in words", async () => {
    const none = await run(["webhooks", "list"], { XDG_CONFIG_HOME: tempDir() });
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(/carehooks login/);
    const missing = await run(["deliveries", "show", "dlv_01M8JAEKFKDB98QNJMQES87XB4"], cliEnv);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/NOT_FOUND: delivery not found \(request req_/);
  });

  it("listen forwards events signed with its session key, and catches up after the server restarts", async () => {
    const local = await startReceiver("/local");
    const { child, lines, connected } = startListen("--forward-to", local.url);
    const { signing_key: key } = (await until(() => lines[0], 10_000, "the session key")) as { signing_key: string };
    expect(key).toMatch(/^whsec_/);
    await connected();

    const first = await book();
    // Events of the tests before may come first (the stream starts a little in the past): find ours.
    const forwarded = await until(() => local.received.find((r) => r.body.includes(first)), 10_000, "the booking");
    const verified = new StandardWebhook(key).verify(forwarded.body, forwarded.headers as Record<string, string>) as {
      data: { appointment_id: string };
    };
    expect(verified.data.appointment_id).toBe(first);
    await until(() => lines.find((line) => line.status === 200), 5000, "a printed line");

    expect(await server.stop("SIGTERM"), server.output()).toBe(0);
    server = await startServer(serverEnv);
    const restartedAt = Date.now();
    const whileAway = [await book(), await book()];
    const ours = [first, ...whileAway];
    const appointments = () =>
      local.received
        .map((r) => (JSON.parse(r.body) as { data: { appointment_id?: string } }).data.appointment_id)
        .filter((id) => id !== undefined && ours.includes(id));
    await until(() => appointments().length >= 3, 10_000, "the bookings made while the server was away");
    expect(Date.now() - restartedAt).toBeLessThan(5000 + 2000);
    expect(appointments()).toEqual(ours);
    child.kill("SIGTERM");
    await local.close();
  });

  it("listen keeps its key per profile, retries a receiver that is down, adds -H headers and prints bodies", {
    timeout: 60_000,
  }, async () => {
    const start = startListen;
    const keyOf = async (run: ReturnType<typeof startListen>) =>
      ((await until(() => run.lines[0], 10_000, "the key")) as { signing_key: string }).signing_key;

    // The receiver is not up yet: its port is chosen, nothing listens there.
    const localPort = await freePort();
    const url = `http://127.0.0.1:${localPort}/local`;
    const first = start("--forward-to", url, "-H", "x-tunnel: dev", "--print-json");
    const key = await keyOf(first);
    await first.connected();
    const booked = await book();
    await new Promise((resolve) => setTimeout(resolve, 700));
    const local = await startReceiver("/local", localPort);
    try {
      type Line = { status: number; tries: number; body: { data: { appointment_id: string } } };
      const line = (await until(
        () => (first.lines as Line[]).find((l) => l.status === 200 && l.body.data.appointment_id === booked),
        15_000,
        "the booking forwarded",
      )) as Line;
      // The receiver was down at first: what came then was tried again until it was up.
      expect(Math.max(...(first.lines as Line[]).map((l) => l.tries ?? 0))).toBeGreaterThan(1);
      expect(line.body.data.appointment_id).toBe(booked);
      const forwarded = local.received.find((r) => r.body.includes(booked)) as (typeof local.received)[number];
      expect(forwarded.headers["x-tunnel"]).toBe("dev");
      new StandardWebhook(key).verify(forwarded.body, forwarded.headers as Record<string, string>);
      first.child.kill("SIGTERM");

      // The key is the profile's: the next run signs with it again, --new-key replaces it.
      const again = start("--forward-to", url);
      expect(await keyOf(again)).toBe(key);
      again.child.kill("SIGTERM");
      const renewed = start("--forward-to", url, "--new-key");
      expect(await keyOf(renewed)).not.toBe(key);
      renewed.child.kill("SIGTERM");
    } finally {
      await local.close();
    }
    const refused = await run(["listen", "--forward-to", url, "-H", "webhook-id: x"], cliEnv);
    expect(refused.stderr).toMatch(/listen sets that header itself/);
  });
});
