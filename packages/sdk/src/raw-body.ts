/**
 * Getting the exact bytes of a webhook request from a framework. A body that a
 * JSON parser already turned into an object cannot be verified: re-serialising
 * it changes spacing, key order and number formatting, so the signature no
 * longer matches (the classic receiver bug). That is a set-up error, reported
 * as a `BodyAlreadyParsedError` with the fix for the framework at hand.
 */
import { BodyAlreadyParsedError, PayloadTooLargeError } from "./verification-errors.js";

/** Largest webhook body the adapters read by default (carehooks' own request limit). */
export const DEFAULT_MAX_BODY_BYTES = 1024 * 1024;

/** The parts of a Node `IncomingMessage` (or an Express request) the adapters read. */
export interface NodeRequestLike {
  readonly headers: Readonly<Record<string, string | readonly string[] | undefined>>;
  readonly method?: string | undefined;
  /** What a body parser left, if one ran. */
  readonly body?: unknown;
  /** True once the body stream has been read to its end. */
  readonly readableEnded?: boolean;
  on(event: "data", listener: (chunk: Buffer | string) => void): unknown;
  on(event: "end", listener: () => void): unknown;
  on(event: "error", listener: (error: Error) => void): unknown;
  removeListener(event: string, listener: (...args: never[]) => void): unknown;
}

/** Which framework an adapter serves: it decides what a `BodyAlreadyParsedError` advises. */
export type Framework = "node" | "express" | "fastify";

const FIXES: Record<Framework, string> = {
  node: "pass the untouched request to the carehooks handler, before any body parser reads it",
  express:
    'mount express.raw on the webhook route before express.json, e.g. app.post("/webhooks/carehooks", express.raw({ type: "application/json" }), expressMiddleware(signingKey), handler), and register that route before app.use(express.json())',
  fastify:
    'register the webhook route with app.register(fastifyWebhook({ ... })), or keep the raw body yourself with an encapsulated content-type parser: instance.addContentTypeParser("application/json", { parseAs: "buffer" }, (req, body, done) => done(null, body))',
};

/** The error for a request whose body was parsed or read before the adapter got it. */
export function bodyAlreadyParsed(framework: Framework, what: string): BodyAlreadyParsedError {
  return new BodyAlreadyParsedError(
    `${what}, so the bytes carehooks signed are gone and the signature cannot be checked (re-serialised JSON does not match it). To fix the set-up, ${FIXES[framework]}.`,
  );
}

/**
 * The raw body of a request: the bytes a raw body parser kept in `body`
 * (a Buffer, Uint8Array or string), else the stream read up to `maxBytes`.
 * Throws `BodyAlreadyParsedError` for a parsed body or an already-read stream,
 * and `PayloadTooLargeError` past `maxBytes`.
 */
export async function rawBodyOf(
  request: NodeRequestLike,
  framework: Framework,
  maxBytes = DEFAULT_MAX_BODY_BYTES,
): Promise<Buffer> {
  const body = request.body;
  if (typeof body === "string") return checkSize(Buffer.from(body, "utf8"), maxBytes);
  if (body instanceof Uint8Array)
    return checkSize(Buffer.from(body.buffer, body.byteOffset, body.byteLength), maxBytes);
  if (body !== undefined && body !== null) {
    throw bodyAlreadyParsed(
      framework,
      `the request body is already a parsed ${Array.isArray(body) ? "array" : typeof body} (req.body)`,
    );
  }
  if (request.readableEnded === true) throw bodyAlreadyParsed(framework, "the request body stream was already read");
  return readStream(request, maxBytes);
}

/** Reads a request stream to its end, refusing more than `maxBytes` (early, when content-length says so). */
export function readStream(request: NodeRequestLike, maxBytes = DEFAULT_MAX_BODY_BYTES): Promise<Buffer> {
  const declared = Number(request.headers["content-length"]);
  if (Number.isFinite(declared) && declared > maxBytes) return Promise.reject(new PayloadTooLargeError(maxBytes));
  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    const finish = (error: Error | undefined) => {
      if (done) return;
      done = true;
      request.removeListener("data", onData);
      request.removeListener("end", onEnd);
      request.removeListener("error", onError);
      if (error) reject(error);
      else resolve(Buffer.concat(chunks, size));
    };
    const onData = (chunk: Buffer | string) => {
      const bytes = typeof chunk === "string" ? Buffer.from(chunk, "utf8") : chunk;
      size += bytes.length;
      if (size > maxBytes) finish(new PayloadTooLargeError(maxBytes));
      else chunks.push(bytes);
    };
    const onEnd = () => finish(undefined);
    const onError = (error: Error) => finish(error);
    request.on("data", onData);
    request.on("end", onEnd);
    request.on("error", onError);
  });
}

function checkSize(body: Buffer, maxBytes: number): Buffer {
  if (body.length > maxBytes) throw new PayloadTooLargeError(maxBytes);
  return body;
}
