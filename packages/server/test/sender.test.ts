import { once } from "node:events";
import http from "node:http";
import type { AddressInfo } from "node:net";
import net from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import {
  BlockedAddressError,
  guardedLookup,
  type Resolve,
  Sender,
  type SenderOptions,
  type SendResult,
} from "../src/delivery/sender.js";
import { parseAllowedTargets, type UrlPolicy } from "../src/domain/url-policy.js";

const loopbackAllowed: UrlPolicy = { allowHttp: true, allowedTargets: parseAllowedTargets(["127.0.0.0/8"]) };
const nothingAllowed: UrlPolicy = { allowHttp: true, allowedTargets: [] };

// Everything opened by a test, closed after it whatever happened.
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function sender(overrides: Partial<SenderOptions> = {}): Sender {
  const instance = new Sender({
    connectTimeoutMs: 2000,
    requestTimeoutMs: 5000,
    policy: loopbackAllowed,
    ...overrides,
  });
  cleanups.push(() => instance.close());
  return instance;
}

interface Received {
  readonly method: string | undefined;
  readonly url: string | undefined;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: Buffer;
}

interface Receiver {
  readonly port: number;
  readonly url: string;
  readonly requests: Received[];
  /** TCP connections accepted. */
  connections: number;
}

async function listen(server: net.Server): Promise<number> {
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return (server.address() as AddressInfo).port;
}

/** An HTTP receiver that records each request (body fully read) before `handler` answers it. */
async function receiver(handler: (req: Received, res: http.ServerResponse) => void): Promise<Receiver> {
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      const received = { method: req.method, url: req.url, headers: req.headers, body: Buffer.concat(chunks) };
      state.requests.push(received);
      handler(received, res);
    });
  });
  server.on("connection", () => {
    state.connections += 1;
  });
  const port = await listen(server);
  const state: Receiver = { port, url: `http://127.0.0.1:${port}/hook`, requests: [], connections: 0 };
  cleanups.push(() => {
    server.closeAllConnections();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return state;
}

/** A raw TCP server; `onSocket` decides what the client gets. */
async function tcpServer(onSocket: (socket: net.Socket) => void): Promise<{ port: number; connections: () => number }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on("error", () => {});
    socket.on("close", () => sockets.delete(socket));
    onSocket(socket);
  });
  let accepted = 0;
  server.on("connection", () => {
    accepted += 1;
  });
  const port = await listen(server);
  cleanups.push(() => {
    for (const socket of sockets) socket.destroy();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return { port, connections: () => accepted };
}

function expectResponse(result: SendResult): Extract<SendResult, { kind: "response" }> {
  if (result.kind !== "response") throw new Error(`expected a response, got ${result.error}: ${result.message}`);
  return result;
}

function expectError(result: SendResult): Extract<SendResult, { kind: "error" }> {
  if (result.kind !== "error") throw new Error(`expected an error, got HTTP ${result.status}`);
  return result;
}

const BODY = JSON.stringify({ event_id: "evt_1", note: "Zoë 🦷 naïve", n: 1 });
const HEADERS = Object.freeze({
  "content-type": "application/json",
  "user-agent": "carehooks/test",
  "webhook-id": "evt_1",
  "webhook-timestamp": "1700000000",
  "webhook-signature": "v1,c2lnbmF0dXJl",
});

describe("Sender responses", () => {
  it("captures a 2xx status, body and lower-cased headers", async () => {
    const target = await receiver((_req, res) => {
      res.setHeader("X-Receiver-Trace", "abc");
      res.writeHead(202, { "Content-Type": "text/plain" });
      res.end("accepted");
    });
    const send = sender({ keepSuccessBody: true });
    const result = expectResponse(await send.send({ url: target.url, headers: HEADERS, body: BODY }));
    expect(result.status).toBe(202);
    expect(result.body).toBe("accepted");
    expect(result.headers["x-receiver-trace"]).toBe("abc");
    expect(result.headers["content-type"]).toBe("text/plain");
    expect(Object.keys(result.headers).every((name) => name === name.toLowerCase())).toBe(true);
    expect(Number.isInteger(result.durationMs) && result.durationMs >= 0).toBe(true);
    // The headers are a getter of the result's class, not an accessor of its own: with an object literal's getter
    // more of each attempt reached V8's old generation (sender.ts, ResponseResult).
    expect(Object.getOwnPropertyDescriptor(result, "headers")).toBeUndefined();
    expect(Object.keys(result).sort()).toEqual(["body", "durationMs", "kind", "status"]);
  });

  it("delivers the exact body bytes and headers to the receiver", async () => {
    const target = await receiver((_req, res) => res.end());
    const headers = { ...HEADERS };
    expectResponse(await sender().send({ url: `${target.url}?a=1`, headers, body: BODY }));
    expect(target.requests).toHaveLength(1);
    const [got] = target.requests;
    expect(got?.method).toBe("POST");
    expect(got?.url).toBe("/hook?a=1");
    expect(got?.body.equals(Buffer.from(BODY, "utf8"))).toBe(true);
    expect(got?.headers["content-length"]).toBe(String(Buffer.byteLength(BODY)));
    for (const [name, value] of Object.entries(HEADERS)) expect(got?.headers[name]).toBe(value);
    expect(got?.headers.host).toBe(`127.0.0.1:${target.port}`);
    expect(headers).toEqual(HEADERS); // the caller's object is not touched
  });

  it.each([500, 410])("reports HTTP %i as a response", async (status) => {
    const target = await receiver((_req, res) => {
      res.statusCode = status;
      res.end("nope");
    });
    const result = expectResponse(await sender().send({ url: target.url, headers: HEADERS, body: BODY }));
    expect(result.status).toBe(status);
    expect(result.body).toBe("nope");
  });

  it("captures Retry-After on 429", async () => {
    const target = await receiver((_req, res) => {
      res.writeHead(429, { "Retry-After": "120" });
      res.end();
    });
    const result = expectResponse(await sender().send({ url: target.url, headers: HEADERS, body: BODY }));
    expect(result.status).toBe(429);
    expect(result.headers["retry-after"]).toBe("120");
  });

  it("does not follow redirects", async () => {
    const elsewhere = await receiver((_req, res) => res.end("followed"));
    const target = await receiver((_req, res) => {
      res.writeHead(307, { Location: elsewhere.url });
      res.end();
    });
    const result = expectResponse(await sender().send({ url: target.url, headers: HEADERS, body: BODY }));
    expect(result.status).toBe(307);
    expect(result.headers.location).toBe(elsewhere.url);
    expect(elsewhere.requests).toHaveLength(0);
    expect(elsewhere.connections).toBe(0);
  });

  it("caps the header count and each header's length", async () => {
    const target = await receiver((_req, res) => {
      for (let i = 0; i < 80; i += 1) res.setHeader(`X-H${i}`, String(i));
      res.setHeader("X-Long", "v".repeat(5000));
      res.end();
    });
    const result = expectResponse(await sender().send({ url: target.url, headers: HEADERS, body: BODY }));
    expect(Object.keys(result.headers)).toHaveLength(50);
    const longest = Math.max(...Object.values(result.headers).map((value) => value.length));
    expect(longest).toBeLessThanOrEqual(1024);
  });

  it.each([
    [true, "x".repeat(4096)],
    [false, ""],
  ])("stores the first 4 KiB of a large response (keepSuccessBody %s: %j…)", async (keepSuccessBody, stored) => {
    const big = Buffer.alloc(5 * 1024 * 1024, "x");
    const target = await receiver((_req, res) => res.end(big));
    const result = expectResponse(
      await sender({ keepSuccessBody }).send({ url: target.url, headers: HEADERS, body: BODY }),
    );
    expect(result.status).toBe(200);
    expect(result.body).toBe(stored);
  });

  it.each([
    [true, 4096],
    [false, 0],
  ])(
    "stops reading an endless response and closes the connection (keepSuccessBody %s)",
    async (keepSuccessBody, stored) => {
      let serverSawClose = false;
      let written = 0;
      const target = await receiver((_req, res) => {
        res.writeHead(200);
        const chunk = Buffer.alloc(64 * 1024, "y");
        const pump = (): void => {
          while (!res.destroyed && res.write(chunk)) written += chunk.length;
        };
        res.on("drain", pump);
        res.on("close", () => {
          serverSawClose = true;
        });
        pump();
      });
      const result = expectResponse(
        await sender({ maxResponseBytes: 256 * 1024, keepSuccessBody }).send({
          url: target.url,
          headers: HEADERS,
          body: BODY,
        }),
      );
      expect(result.body).toHaveLength(stored);
      await expect.poll(() => serverSawClose, { timeout: 5000 }).toBe(true);
      // The receiver could push no more than our cap plus what socket buffers hold.
      expect(written).toBeLessThan(64 * 1024 * 1024);
    },
  );

  it("decodes stored bytes as UTF-8 without inventing a character at the cut", async () => {
    // "é" is two bytes; the 4096-byte cut falls between them.
    const cut = Buffer.concat([Buffer.alloc(4095, "a"), Buffer.from("é".repeat(10), "utf8")]);
    const invalid = Buffer.from([0x6f, 0x6b, 0xff, 0x21]);
    const target = await receiver((req, res) => res.end(req.url === "/cut" ? cut : invalid));
    const send = sender({ keepSuccessBody: true });
    const stored = expectResponse(
      await send.send({ url: `http://127.0.0.1:${target.port}/cut`, headers: HEADERS, body: BODY }),
    );
    expect(stored.body).toBe("a".repeat(4095));
    const replaced = expectResponse(await send.send({ url: target.url, headers: HEADERS, body: BODY }));
    expect(replaced.body).toBe("ok\uFFFD!");
  });

  it("reuses one keep-alive connection for sequential sends", async () => {
    const target = await receiver((_req, res) => res.end("ok"));
    const send = sender();
    expectResponse(await send.send({ url: target.url, headers: HEADERS, body: BODY }));
    // With pipelining 1 undici hands a finished socket back one setImmediate later (client-h1.js); a send
    // made before that opens a second connection, so let that turn pass.
    await new Promise((resolve) => setImmediate(resolve));
    expectResponse(await send.send({ url: target.url, headers: HEADERS, body: BODY }));
    expect(target.requests).toHaveLength(2);
    expect(target.connections).toBe(1);
  });
});

describe("Sender network errors", () => {
  it("reports a closed port as connect_refused", async () => {
    const probe = net.createServer();
    const port = await listen(probe);
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    const result = expectError(
      await sender().send({ url: `http://127.0.0.1:${port}/hook`, headers: HEADERS, body: BODY }),
    );
    expect(result.error).toBe("connect_refused");
    expect(result.message).toContain("ECONNREFUSED");
  });

  it.each([
    ["closes (FIN)", (socket: net.Socket) => socket.destroy()],
    ["resets (RST)", (socket: net.Socket) => socket.resetAndDestroy()],
  ])("reports a receiver that %s on data as connection_reset", async (_how, drop) => {
    const server = await tcpServer((socket) => socket.once("data", () => drop(socket)));
    const result = expectError(
      await sender().send({ url: `http://127.0.0.1:${server.port}/hook`, headers: HEADERS, body: BODY }),
    );
    expect(result.error).toBe("connection_reset");
  });

  it("times out a receiver that never answers", async () => {
    const target = await receiver(() => {}); // never responds
    const result = expectError(
      await sender({ requestTimeoutMs: 300 }).send({ url: target.url, headers: HEADERS, body: BODY }),
    );
    expect(result.error).toBe("timeout");
    expect(result.durationMs).toBeGreaterThanOrEqual(250);
    expect(result.durationMs).toBeLessThan(5000);
  });

  it("holds each attempt to its own timeout when a shorter one starts after a longer one", async () => {
    const target = await receiver(() => {}); // never responds
    const send = sender({ requestTimeoutMs: 3000 });
    const long = send.send({ url: target.url, headers: HEADERS, body: BODY });
    const short = send.send({ url: target.url, headers: HEADERS, body: BODY, timeoutMs: 300 });
    const cut = expectError(await short);
    expect(cut.error).toBe("timeout");
    expect(cut.message).toMatch(/300 ms/);
    // The armed timer was waiting for the 3 s deadline: the 300 ms one must have re-armed it.
    expect(cut.durationMs).toBeGreaterThanOrEqual(250);
    expect(cut.durationMs).toBeLessThan(2000);
    const late = expectError(await long);
    expect(late.error).toBe("timeout");
    expect(late.durationMs).toBeGreaterThanOrEqual(2900);
  });

  it.each([false, true])(
    "times out a receiver that sends headers then dribbles the body (keepSuccessBody %s)",
    async (keepSuccessBody) => {
      const target = await receiver((_req, res) => {
        res.writeHead(200);
        res.write("a");
        // Each byte arrives well inside any idle timeout, so only a whole-attempt limit stops it.
        const dribble = setInterval(() => (res.destroyed ? clearInterval(dribble) : res.write("a")), 50);
        res.on("close", () => clearInterval(dribble));
      });
      const result = expectError(
        await sender({ requestTimeoutMs: 300, keepSuccessBody }).send({
          url: target.url,
          headers: HEADERS,
          body: BODY,
        }),
      );
      expect(result.error).toBe("timeout");
      expect(result.durationMs).toBeGreaterThanOrEqual(250);
      expect(result.durationMs).toBeLessThan(5000);
    },
  );

  it("reports a stalled TLS handshake as connect_timeout", async () => {
    // Accepts TCP but never answers the ClientHello: connect has not finished for undici until secureConnect.
    const server = await tcpServer(() => {});
    const result = expectError(
      await sender({ connectTimeoutMs: 300, requestTimeoutMs: 10_000 }).send({
        url: `https://127.0.0.1:${server.port}/hook`,
        headers: HEADERS,
        body: BODY,
      }),
    );
    expect(result.error).toBe("connect_timeout");
    expect(result.durationMs).toBeLessThan(5000);
  });

  it("counts a slow name resolution against the connect timeout", async () => {
    const never: Resolve = () => new Promise(() => {});
    const result = expectError(
      await sender({ connectTimeoutMs: 300, requestTimeoutMs: 10_000, resolve: never }).send({
        url: "http://slow-dns.test/hook",
        headers: HEADERS,
        body: BODY,
      }),
    );
    expect(result.error).toBe("connect_timeout");
  });

  it("reports a name that does not resolve as dns", async () => {
    const missing: Resolve = () =>
      Promise.reject(Object.assign(new Error("getaddrinfo ENOTFOUND nowhere.test"), { code: "ENOTFOUND" }));
    const result = expectError(
      await sender({ resolve: missing }).send({ url: "http://nowhere.test/hook", headers: HEADERS, body: BODY }),
    );
    expect(result.error).toBe("dns");
    expect(result.message).toContain("ENOTFOUND");
  });

  it("reports a TLS failure as tls", async () => {
    const target = await receiver((_req, res) => res.end()); // plain HTTP where TLS is expected
    const result = expectError(
      await sender().send({ url: `https://127.0.0.1:${target.port}/hook`, headers: HEADERS, body: BODY }),
    );
    expect(result.error).toBe("tls");
  });

  it.each([
    ["not a url", "not a url"],
    ["ftp://127.0.0.1/hook", "ftp:"],
  ])("reports %s as invalid_url", async (url, fragment) => {
    const result = expectError(await sender().send({ url, headers: HEADERS, body: BODY }));
    expect(result.error).toBe("invalid_url");
    if (fragment !== "not a url") expect(result.message).toContain(fragment);
  });
});

describe("Sender per-attempt work", () => {
  /** Native timers alive in this process now. */
  const timers = (): number => process.getActiveResourcesInfo().filter((kind) => kind === "Timeout").length;

  it("cuts slow-drip bodies at the deadline with one timer for every attempt in flight", async () => {
    const attempts = 20;
    const open = new Set<http.ServerResponse>();
    let allOpen: () => void = () => {};
    const opened = new Promise<void>((resolve) => {
      allOpen = resolve;
    });
    const target = await receiver((_req, res) => {
      res.writeHead(200);
      res.write("a");
      open.add(res);
      res.on("close", () => open.delete(res));
      if (open.size === attempts) allOpen();
    });
    // One interval drips into every open response, so the receiver adds one timer, not one per attempt.
    const drip = setInterval(() => {
      for (const res of open) res.write("a");
    }, 50);
    cleanups.push(() => clearInterval(drip));
    // Over 1 s, undici's header, body and connect timeouts all ride its one coarse timer.
    const send = sender({ requestTimeoutMs: 1500 });
    const before = timers();
    const sending = Array.from({ length: attempts }, () =>
      send.send({ url: target.url, headers: HEADERS, body: BODY }),
    );
    await opened;
    const during = timers();
    const results = await Promise.all(sending);
    for (const result of results) {
      const failed = expectError(result);
      expect(failed.error).toBe("timeout");
      expect(failed.durationMs).toBeGreaterThanOrEqual(1490);
      expect(failed.durationMs).toBeLessThan(3000);
    }
    // The deadline sweeper and undici's shared timer, with room for the test runner's own: a timer per attempt adds 20.
    expect(during - before).toBeLessThanOrEqual(5);
    await expect.poll(() => open.size, { timeout: 5000 }).toBe(0);
  });

  it("dumps a 2xx body it does not keep, reusing the connection, and keeps a failure's", async () => {
    const target = await receiver((req, res) => {
      res.statusCode = req.url === "/busy" ? 503 : 200;
      res.end(req.url === "/busy" ? "busy" : "z".repeat(10_000));
    });
    const send = sender();
    const first = expectResponse(await send.send({ url: target.url, headers: HEADERS, body: BODY }));
    expect(first).toMatchObject({ status: 200, body: "" });
    // See "reuses one keep-alive connection": undici frees the socket one turn later.
    await new Promise((resolve) => setImmediate(resolve));
    const busy = `http://127.0.0.1:${target.port}/busy`;
    expect(expectResponse(await send.send({ url: busy, headers: HEADERS, body: BODY }))).toMatchObject({
      status: 503,
      body: "busy",
    });
    // Read to the end, not cut: the one connection served both.
    expect(target.connections).toBe(1);
  });

  it.each([false, true])(
    "reports a 2xx body cut short by the receiver as connection_reset (keepSuccessBody %s)",
    async (keepSuccessBody) => {
      const server = await tcpServer((socket) =>
        socket.once("data", () => {
          socket.write("HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\npartial");
          setTimeout(() => socket.destroy(), 50);
        }),
      );
      const result = expectError(
        await sender({ keepSuccessBody }).send({
          url: `http://127.0.0.1:${server.port}/hook`,
          headers: HEADERS,
          body: BODY,
        }),
      );
      expect(result.error).toBe("connection_reset");
    },
  );

  it("abortAll cuts off attempts waiting for headers and reading a body, and later sends still work", async () => {
    const silent = await receiver(() => {}); // never answers
    let bodyStarted: () => void = () => {};
    const started = new Promise<void>((resolve) => {
      bodyStarted = resolve;
    });
    const endless = await receiver((_req, res) => {
      res.writeHead(200);
      res.write("a", () => bodyStarted());
    });
    const healthy = await receiver((_req, res) => res.end("ok"));
    const send = sender({ requestTimeoutMs: 10_000 });
    const sending = [silent, endless].map((target) => send.send({ url: target.url, headers: HEADERS, body: BODY }));
    await started;
    await expect.poll(() => silent.requests.length).toBe(1);
    // Let the endless response's headers reach undici, so the body read is what gets cut.
    await new Promise((resolve) => setTimeout(resolve, 50));
    send.abortAll();
    const results = await Promise.all(sending);
    expect(results.map((result) => result.kind)).toEqual(["aborted", "aborted"]);
    for (const result of results) expect(result.durationMs).toBeLessThan(5000);
    expect(expectResponse(await send.send({ url: healthy.url, headers: HEADERS, body: BODY })).status).toBe(200);
  });

  it("remembers at most endpointCacheSize endpoint URLs, refused ones included", async () => {
    const target = await receiver((_req, res) => res.end());
    const send = sender({ endpointCacheSize: 3 });
    for (let n = 0; n < 5; n += 1) {
      const url = `${target.url}?n=${n}#fragment`;
      expectResponse(await send.send({ url, headers: HEADERS, body: BODY }));
      expectResponse(await send.send({ url, headers: HEADERS, body: BODY }));
    }
    expect(send.endpointsCached).toBe(3);
    // Every URL was sent to as given, fragment dropped, also after it was forgotten and worked out again.
    expectResponse(await send.send({ url: `${target.url}?n=0#fragment`, headers: HEADERS, body: BODY }));
    expect(target.requests.map((request) => request.url)).toEqual([
      ...[0, 1, 2, 3, 4].flatMap((n) => [`/hook?n=${n}`, `/hook?n=${n}`]),
      "/hook?n=0",
    ]);
    expect(send.endpointsCached).toBe(3);
    for (let i = 0; i < 2; i += 1) {
      expect(expectError(await send.send({ url: "not a url", headers: HEADERS, body: BODY })).error).toBe(
        "invalid_url",
      );
    }
    expect(send.endpointsCached).toBe(3);
  });
});

describe("Sender SSRF guard", () => {
  it("blocks a loopback URL before connecting when the allow-list does not cover it", async () => {
    const target = await receiver((_req, res) => res.end());
    const result = expectError(
      await sender({ policy: nothingAllowed }).send({ url: target.url, headers: HEADERS, body: BODY }),
    );
    expect(result.error).toBe("blocked");
    expect(result.message).toContain("loopback");
    expect(target.connections).toBe(0);
    expect(target.requests).toHaveLength(0);
  });

  it("blocks at connect time a name that resolves to a refused address (DNS rebinding)", async () => {
    const target = await receiver((_req, res) => res.end());
    const rebinding: Resolve = async () => [{ address: "127.0.0.1", family: 4 }];
    const result = expectError(
      await sender({ policy: nothingAllowed, resolve: rebinding }).send({
        url: `http://rebind.test:${target.port}/hook`,
        headers: HEADERS,
        body: BODY,
      }),
    );
    expect(result.error).toBe("blocked");
    expect(result.message).toContain("127.0.0.1");
    expect(result.message).toContain("rebind.test");
    expect(target.connections).toBe(0);
  });

  it("connects through the guarded lookup when the resolved address is allowed", async () => {
    const target = await receiver((_req, res) => res.end("ok"));
    const rebinding: Resolve = async () => [{ address: "127.0.0.1", family: 4 }];
    const result = expectResponse(
      await sender({ resolve: rebinding }).send({
        url: `http://rebind.test:${target.port}/hook`,
        headers: HEADERS,
        body: BODY,
      }),
    );
    expect(result.status).toBe(200);
    expect(target.requests[0]?.headers.host).toBe(`rebind.test:${target.port}`);
  });
});

describe("guardedLookup", () => {
  type Outcome = { error: NodeJS.ErrnoException | null; address: unknown; family: number | undefined };

  function lookUp(resolve: Resolve, options: Parameters<ReturnType<typeof guardedLookup>>[1], policy = nothingAllowed) {
    return new Promise<Outcome>((done) => {
      guardedLookup(policy, resolve)("host.test", options, (error, address, family) =>
        done({ error, address, family }),
      );
    });
  }

  const resolving =
    (...addresses: [string, number][]): Resolve =>
    async () =>
      addresses.map(([address, family]) => ({ address, family }));

  it("answers the all:true form with every address", async () => {
    const outcome = await lookUp(resolving(["93.184.216.34", 4], ["2606:2800:220:1::1", 6]), { all: true });
    expect(outcome.error).toBeNull();
    expect(outcome.address).toEqual([
      { address: "93.184.216.34", family: 4 },
      { address: "2606:2800:220:1::1", family: 6 },
    ]);
  });

  it("answers the single form with the first address", async () => {
    const outcome = await lookUp(resolving(["93.184.216.34", 4], ["2606:2800:220:1::1", 6]), { family: 0 });
    expect(outcome).toEqual({ error: null, address: "93.184.216.34", family: 4 });
  });

  it("passes the requested family and hints to the resolver, always asking for all", async () => {
    let seen: unknown;
    const spy: Resolve = async (_host, options) => {
      seen = options;
      return [{ address: "93.184.216.34", family: 4 }];
    };
    await lookUp(spy, { family: 4, hints: 32 });
    expect(seen).toEqual({ family: 4, hints: 32, all: true });
  });

  it.each([
    ["a private address", [["10.0.0.5", 4]] as [string, number][]],
    [
      "a private address beside a public one",
      [
        ["93.184.216.34", 4],
        ["192.168.1.1", 4],
      ] as [string, number][],
    ],
    ["an IPv4-mapped loopback", [["::ffff:127.0.0.1", 6]] as [string, number][]],
    ["cloud metadata", [["169.254.169.254", 4]] as [string, number][]],
  ])("fails with BlockedAddressError for %s", async (_what, addresses) => {
    for (const all of [true, false]) {
      const outcome = await lookUp(resolving(...addresses), { all });
      expect(outcome.error).toBeInstanceOf(BlockedAddressError);
      expect(outcome.error?.message).toContain("host.test resolved to");
    }
  });

  it("allows what the allow-list covers", async () => {
    const outcome = await lookUp(resolving(["127.0.0.1", 4]), { all: true }, loopbackAllowed);
    expect(outcome.error).toBeNull();
  });

  it("passes resolver failures through and treats an empty answer as ENOTFOUND", async () => {
    const failure = Object.assign(new Error("getaddrinfo EAI_AGAIN host.test"), { code: "EAI_AGAIN" });
    expect((await lookUp(() => Promise.reject(failure), { all: true })).error).toBe(failure);
    expect((await lookUp(async () => [], {})).error?.code).toBe("ENOTFOUND");
  });
});

describe("Sender with an egress proxy", () => {
  /** A minimal CONNECT proxy that records the authorities it was asked for. */
  async function connectProxy(): Promise<{ url: string; tunnels: string[] }> {
    const tunnels: string[] = [];
    const proxy = http.createServer((_req, res) => {
      res.statusCode = 405;
      res.end();
    });
    const sockets = new Set<net.Socket>();
    proxy.on("connect", (req: http.IncomingMessage, client: net.Socket, head: Buffer) => {
      const authority = req.url ?? "";
      tunnels.push(authority);
      const [host, port] = authority.split(":");
      const upstream = net.connect(Number(port), host, () => {
        client.write("HTTP/1.1 200 Connection Established\r\n\r\n");
        upstream.write(head);
        upstream.pipe(client);
        client.pipe(upstream);
      });
      for (const socket of [client, upstream]) {
        sockets.add(socket);
        socket.on("error", () => {});
      }
    });
    const port = await listen(proxy);
    cleanups.push(() => {
      for (const socket of sockets) socket.destroy();
      return new Promise<void>((resolve) => proxy.close(() => resolve()));
    });
    return { url: `http://127.0.0.1:${port}`, tunnels };
  }

  it("sends through the proxy", async () => {
    const proxy = await connectProxy();
    const target = await receiver((_req, res) => res.end("via proxy"));
    const result = expectResponse(
      await sender({ egressProxy: proxy.url, keepSuccessBody: true }).send({
        url: target.url,
        headers: HEADERS,
        body: BODY,
      }),
    );
    expect(result.body).toBe("via proxy");
    expect(proxy.tunnels).toEqual([`127.0.0.1:${target.port}`]);
    expect(target.requests[0]?.body.equals(Buffer.from(BODY))).toBe(true);
  });

  it("still runs the URL checks", async () => {
    const proxy = await connectProxy();
    const target = await receiver((_req, res) => res.end());
    const result = expectError(
      await sender({ egressProxy: proxy.url, policy: nothingAllowed }).send({
        url: target.url,
        headers: HEADERS,
        body: BODY,
      }),
    );
    expect(result.error).toBe("blocked");
    expect(proxy.tunnels).toHaveLength(0);
  });
});
