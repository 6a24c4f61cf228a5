/**
 * Raw-body correctness of the framework adapters: each one verifies the exact
 * bytes received (a body whose spacing a re-serialisation would change), and
 * each one handed an already-parsed body reports a BodyAlreadyParsedError that
 * says how to fix the set-up. Real express is not installed in this repository:
 * the Express middleware is tested with Express-shaped fakes and behind a real
 * node:http server with express.raw / express.json stand-ins.
 */
import http from "node:http";
import { PassThrough } from "node:stream";
import Fastify from "fastify";
import { afterEach, describe, expect, it } from "vitest";
import {
  BodyAlreadyParsedError,
  type CarehooksEvent,
  type ExpressRequestLike,
  type ExpressResponseLike,
  expressMiddleware,
  fastifyWebhook,
  NoMatchingSignatureError,
  nodeHandler,
  signatureHeaders,
  type VerifiedExpressRequest,
  verifyFastifyRequest,
} from "../src/index.js";
import { listenLocally } from "./support/local-server.js";

const KEY = "adapter-test-signing-key-0001";
const EVENT_ID = "evt_01JDXR2Q8M7Z5V3K9T4N6B2C1F";
// Spacing, key order and "1.50" that JSON.parse + JSON.stringify would all change.
const BODY = `{ "event": "appointment.created",\n  "event_id": "${EVENT_ID}", "b": 1.50, "data": {"appointment_id":"apt_1"} }`;

function signed(body = BODY, key = KEY): Record<string, string> {
  return { "content-type": "application/json", ...signatureHeaders({ body, webhookId: EVENT_ID, signingKey: key }) };
}

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (closers.length > 0) await closers.pop()!();
});

const serve = (listener: http.RequestListener): Promise<string> => listenLocally(listener, closers);

async function post(url: string, body: string | Buffer, headers: Record<string, string>) {
  const response = await fetch(url, { method: "POST", headers, body });
  const text = await response.text();
  return { status: response.status, body: text === "" ? undefined : JSON.parse(text) };
}

describe("nodeHandler (real node:http server)", () => {
  it("verifies the raw bytes and hands over the typed event, then answers 200", async () => {
    const seen: CarehooksEvent[] = [];
    const url = await serve(nodeHandler(KEY, (event) => void seen.push(event)));
    const answer = await post(url, BODY, signed());
    expect(answer).toEqual({ status: 200, body: { received: true } });
    expect(seen).toHaveLength(1);
    expect(seen[0]!.event_id).toBe(EVENT_ID);
  });

  it("lets the listener answer itself, and gives it the raw body and signature", async () => {
    const url = await serve(
      nodeHandler(KEY, (_event, { response, rawBody, signature }) => {
        response.writeHead(202, { "content-type": "application/json" });
        response.end(JSON.stringify({ bytes: rawBody.length, scheme: signature.scheme, id: signature.webhookId }));
      }),
    );
    const answer = await post(url, BODY, signed());
    expect(answer).toEqual({
      status: 202,
      body: { bytes: Buffer.byteLength(BODY), scheme: "eka", id: EVENT_ID },
    });
  });

  it("refuses a tampered body with 400 and the error code", async () => {
    const errors: unknown[] = [];
    const url = await serve(nodeHandler(KEY, () => {}, { onError: (error) => errors.push(error) }));
    const answer = await post(url, BODY.replace("apt_1", "apt_2"), signed());
    expect(answer.status).toBe(400);
    expect(answer.body.error.code).toBe("no_matching_signature");
    expect(errors[0]).toBeInstanceOf(NoMatchingSignatureError);
  });

  it("refuses a body over maxBodyBytes with 413, with and without content-length", async () => {
    const url = await serve(nodeHandler(KEY, () => {}, { maxBodyBytes: 64, onError: () => {} }));
    expect((await post(url, BODY, signed())).status).toBe(413);
    // Chunked, no content-length: the limit is enforced while reading.
    const response = await new Promise<http.IncomingMessage>((resolve, reject) => {
      const request = http.request(url, { method: "POST", headers: signed() }, resolve);
      request.on("error", reject);
      request.write(BODY.slice(0, 40));
      request.end(BODY.slice(40));
    });
    expect(response.statusCode).toBe(413);
  });

  it("answers 405 to other methods and 500 when the listener throws", async () => {
    const url = await serve(
      nodeHandler(
        KEY,
        () => {
          throw new Error("database down");
        },
        { onError: () => {} },
      ),
    );
    expect((await fetch(url)).status).toBe(405);
    const answer = await post(url, BODY, signed());
    expect(answer.status).toBe(500);
    expect(answer.body.error.code).toBe("handler_failed");
    expect(JSON.stringify(answer.body)).not.toContain("database down");
  });

  it("reports a body a parser already turned into an object as BodyAlreadyParsedError (500)", async () => {
    const errors: unknown[] = [];
    const handler = nodeHandler(KEY, () => {}, { onError: (error) => errors.push(error) });
    const url = await serve(async (req, res) => {
      // A careless wrapper that parsed the JSON first.
      const chunks: Buffer[] = [];
      for await (const chunk of req) chunks.push(chunk as Buffer);
      Object.assign(req, { body: JSON.parse(Buffer.concat(chunks).toString()) });
      await handler(req, res);
    });
    const answer = await post(url, BODY, signed());
    expect(answer.status).toBe(500);
    expect(answer.body.error.code).toBe("body_already_parsed");
    expect(errors[0]).toBeInstanceOf(BodyAlreadyParsedError);
  });
});

/** An Express-shaped request: a readable stream with headers, and `body` when a body parser ran. */
function expressRequest(headers: Record<string, string>, body?: unknown, stream?: string): ExpressRequestLike {
  const request = new PassThrough();
  if (stream !== undefined) request.end(stream);
  return Object.assign(request, { headers, method: "POST", ...(body === undefined ? {} : { body }) });
}

function expressResponse() {
  const sent: { status?: number; json?: any } = {};
  const response: ExpressResponseLike = {
    headersSent: false,
    status(code) {
      sent.status = code;
      return response;
    },
    json(body) {
      sent.json = body;
      return response;
    },
  };
  return { response, sent };
}

async function runMiddleware(request: ExpressRequestLike, options = {}) {
  const { response, sent } = expressResponse();
  const nextCalls: unknown[][] = [];
  await expressMiddleware(KEY, { onError: () => {}, ...options })(request, response, (...args) => nextCalls.push(args));
  return { sent, nextCalls };
}

describe("expressMiddleware (Express-shaped fakes)", () => {
  it("with express.raw's Buffer body: verifies, sets req.carehooksEvent, calls next()", async () => {
    const request = expressRequest(signed(), Buffer.from(BODY));
    const { sent, nextCalls } = await runMiddleware(request);
    expect(nextCalls).toEqual([[]]);
    expect(sent).toEqual({});
    expect(request.carehooksEvent?.event_id).toBe(EVENT_ID);
    expect(request.carehooksSignature?.ok).toBe(true);
  });

  it("with no body parser: reads the raw stream itself", async () => {
    const request = expressRequest(signed(), undefined, BODY);
    const { nextCalls } = await runMiddleware(request);
    expect(nextCalls).toEqual([[]]);
    expect(request.carehooksEvent?.event).toBe("appointment.created");
  });

  it("with express.text's string body: verifies it", async () => {
    const request = expressRequest(signed(), BODY);
    expect((await runMiddleware(request)).nextCalls).toEqual([[]]);
  });

  it("with express.json's parsed body: next(BodyAlreadyParsedError) saying how to fix it", async () => {
    const request = expressRequest(signed(), JSON.parse(BODY));
    const { sent, nextCalls } = await runMiddleware(request);
    expect(sent).toEqual({});
    expect(nextCalls).toHaveLength(1);
    const error = nextCalls[0]![0] as BodyAlreadyParsedError;
    expect(error).toBeInstanceOf(BodyAlreadyParsedError);
    expect(error.code).toBe("body_already_parsed");
    expect(error.message).toContain('express.raw({ type: "application/json" })');
    expect(error.message).toContain("before express.json");
    expect(request.carehooksEvent).toBeUndefined();
  });

  it("with a stream already read to its end: BodyAlreadyParsedError", async () => {
    const request = expressRequest(signed(), undefined, BODY);
    for await (const _ of request as unknown as PassThrough) {
      // drain it, as a careless parser would
    }
    const { nextCalls } = await runMiddleware(request);
    expect(nextCalls[0]![0]).toBeInstanceOf(BodyAlreadyParsedError);
  });

  it("refuses a bad signature with 400 JSON and does not call next", async () => {
    const request = expressRequest(signed(BODY, "some-other-signing-key-0001"), Buffer.from(BODY));
    const { sent, nextCalls } = await runMiddleware(request);
    expect(nextCalls).toEqual([]);
    expect(sent.status).toBe(400);
    expect(sent.json.error.code).toBe("no_matching_signature");
  });

  it("refuses a body over maxBodyBytes with 413", async () => {
    const request = expressRequest(signed(), Buffer.from(BODY));
    const { sent } = await runMiddleware(request, { maxBodyBytes: 10 });
    expect(sent.status).toBe(413);
  });
});

describe("expressMiddleware behind a real node:http server", () => {
  /** Stand-ins for express.raw and express.json, and the bits of res Express adds. */
  type Parser = (req: http.IncomingMessage & { body?: unknown }) => Promise<void>;
  const raw: Parser = async (req) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    req.body = Buffer.concat(chunks);
  };
  const json: Parser = async (req) => {
    await raw(req);
    req.body = JSON.parse((req.body as Buffer).toString("utf8"));
  };

  async function app(parser: Parser | undefined) {
    const middleware = expressMiddleware(KEY, { onError: () => {} });
    return serve(async (req, res) => {
      const response = Object.assign(res, {
        status(code: number) {
          res.statusCode = code;
          return response;
        },
        json(body: unknown) {
          res.setHeader("content-type", "application/json");
          res.end(JSON.stringify(body));
        },
      });
      if (parser) await parser(req);
      await middleware(req as ExpressRequestLike, response, (error?: unknown) => {
        if (error) {
          // Express's default error handler: 500.
          res.statusCode = 500;
          res.end(JSON.stringify({ name: (error as Error).name, message: (error as Error).message }));
          return;
        }
        const { carehooksEvent } = req as unknown as VerifiedExpressRequest;
        response.status(200).json({ got: carehooksEvent.event_id });
      });
    });
  }

  it("express.raw on the route: verified", async () => {
    expect(await post(await app(raw), BODY, signed())).toEqual({ status: 200, body: { got: EVENT_ID } });
  });

  it("no parser: verified from the stream", async () => {
    expect(await post(await app(undefined), BODY, signed())).toEqual({ status: 200, body: { got: EVENT_ID } });
  });

  it("express.json first: BodyAlreadyParsedError reaches the error handler", async () => {
    const answer = await post(await app(json), BODY, signed());
    expect(answer.status).toBe(500);
    expect(answer.body.name).toBe("BodyAlreadyParsedError");
    expect(answer.body.message).toContain("mount express.raw on the webhook route before express.json");
  });

  it("a tampered body: 400", async () => {
    const answer = await post(await app(raw), BODY.replace("1.50", "1.5"), signed());
    expect(answer.status).toBe(400);
  });
});

describe("fastifyWebhook (real Fastify instance)", () => {
  async function fastifyApp() {
    const seen: CarehooksEvent[] = [];
    const app = Fastify();
    closers.push(() => app.close());
    await app.register(
      fastifyWebhook({
        path: "/webhooks/carehooks",
        signingKey: KEY,
        onEvent: (event) => void seen.push(event),
        onError: () => {},
      }),
    );
    // The rest of the app still parses JSON as usual.
    app.post("/api/echo", async (request) => ({ parsed: request.body }));
    // A route that tries to verify a body Fastify already parsed.
    app.post("/webhooks/wrong", async (request, reply) => {
      try {
        verifyFastifyRequest(request, KEY);
        return { verified: true };
      } catch (error) {
        return reply.code(500).send({ name: (error as Error).name, message: (error as Error).message });
      }
    });
    return { app, seen };
  }

  it("verifies the raw body (inject)", async () => {
    const { app, seen } = await fastifyApp();
    const response = await app.inject({ method: "POST", url: "/webhooks/carehooks", headers: signed(), payload: BODY });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual({ received: true });
    expect(seen[0]?.event_id).toBe(EVENT_ID);
    const echo = await app.inject({ method: "POST", url: "/api/echo", payload: { a: 1 } });
    expect(echo.json()).toEqual({ parsed: { a: 1 } });
  });

  it("verifies the raw body over a real socket, and refuses a tampered one", async () => {
    const { app, seen } = await fastifyApp();
    const address = await app.listen({ port: 0, host: "127.0.0.1" });
    expect(await post(`${address}/webhooks/carehooks`, BODY, signed())).toEqual({
      status: 200,
      body: { received: true },
    });
    const tampered = await post(`${address}/webhooks/carehooks`, BODY.replace(" 1.50", "1.5"), signed());
    expect(tampered.status).toBe(400);
    expect(tampered.body.error.code).toBe("no_matching_signature");
    expect(seen).toHaveLength(1);
  });

  it("an already-parsed body: BodyAlreadyParsedError saying how to fix it", async () => {
    const { app } = await fastifyApp();
    const response = await app.inject({ method: "POST", url: "/webhooks/wrong", headers: signed(), payload: BODY });
    expect(response.statusCode).toBe(500);
    expect(response.json().name).toBe("BodyAlreadyParsedError");
    expect(response.json().message).toContain('parseAs: "buffer"');
    expect(() => verifyFastifyRequest({ headers: signed(), body: JSON.parse(BODY) }, KEY)).toThrow(
      BodyAlreadyParsedError,
    );
  });

  it("works inside an app whose own application/json parser is custom", async () => {
    const app = Fastify();
    closers.push(() => app.close());
    app.removeContentTypeParser("application/json");
    app.addContentTypeParser("application/json", { parseAs: "string" }, (_request, body, done) =>
      done(null, JSON.parse(body as string)),
    );
    const seen: string[] = [];
    await app.register(
      fastifyWebhook({ path: "/hook", signingKey: KEY, onEvent: (event) => void seen.push(event.event_id) }),
    );
    const response = await app.inject({ method: "POST", url: "/hook", headers: signed(), payload: BODY });
    expect(response.statusCode).toBe(200);
    expect(seen).toEqual([EVENT_ID]);
  });

  it("a throwing onEvent: 500, so carehooks retries", async () => {
    const app = Fastify();
    closers.push(() => app.close());
    await app.register(
      fastifyWebhook({
        path: "/hook",
        signingKey: KEY,
        onEvent: () => {
          throw new Error("nope");
        },
        onError: () => {},
      }),
    );
    const response = await app.inject({ method: "POST", url: "/hook", headers: signed(), payload: BODY });
    expect(response.statusCode).toBe(500);
    expect(response.json().error.code).toBe("handler_failed");
  });
});

describe("adapters made without a key", () => {
  it("throw when made, naming the adapter, not on the first webhook", () => {
    const missing = process.env.CAREHOOKS_TEST_KEY_THAT_IS_NOT_SET as string;
    expect(() => nodeHandler(missing, () => {})).toThrow(
      /^nodeHandler: the signing key must be a non-empty string .* got undefined; is the environment variable/,
    );
    expect(() => expressMiddleware("")).toThrow(/^expressMiddleware: .* got an empty string/);
    expect(() => fastifyWebhook({ signingKey: [], handler: async () => {} } as never)).toThrow(
      /^fastifyWebhook: .* got a list of 0/,
    );
  });
});
