/**
 * Fastify support. Typed structurally (no dependency on fastify). Fastify's
 * JSON parser would turn the body into an object before a route sees it, so
 * the webhook route lives in its own encapsulated plugin whose
 * `application/json` parser keeps the raw bytes (`parseAs: "buffer"`); the rest
 * of the app keeps parsing JSON as usual.
 */
import type { CarehooksEvent } from "../events.js";
import { bodyAlreadyParsed } from "../raw-body.js";
import { checkKeys, type SigningKeys, type VerifiedSignature, type VerifyOptions, verifyAndParse } from "../verify.js";
import { type AdapterOptions, failureAnswer, RECEIVED, report } from "./answer.js";

/** The parts of a Fastify request the helpers read. */
export interface FastifyRequestLike {
  readonly body?: unknown;
  readonly headers: Readonly<Record<string, string | readonly string[] | undefined>>;
}

/** The parts of a Fastify reply the route uses. */
export interface FastifyReplyLike {
  readonly sent: boolean;
  code(statusCode: number): FastifyReplyLike;
  send(payload?: unknown): unknown;
}

type ParserDone = (error: Error | null, body?: unknown) => void;

/** The parts of a Fastify instance the plugin uses (method syntax, so Fastify's own overloads fit). */
export interface FastifyInstanceLike {
  hasContentTypeParser(contentType: string): boolean;
  removeContentTypeParser(contentType: string): unknown;
  addContentTypeParser(
    contentType: string,
    options: { parseAs: "buffer"; bodyLimit?: number },
    parser: (request: FastifyRequestLike, body: Buffer, done: ParserDone) => void,
  ): unknown;
  post(path: string, handler: (request: FastifyRequestLike, reply: FastifyReplyLike) => unknown): unknown;
}

/**
 * Verifies a Fastify request whose body was kept raw (a Buffer or string) and
 * returns the typed event. Throws `BodyAlreadyParsedError` when Fastify's JSON
 * parser already ran, and a `WebhookVerificationError` for a refused request.
 */
export function verifyFastifyRequest(
  request: FastifyRequestLike,
  signingKey: SigningKeys,
  options: VerifyOptions = {},
): CarehooksEvent {
  return verifyFastify(request, signingKey, options).event;
}

function verifyFastify(request: FastifyRequestLike, signingKey: SigningKeys, options: VerifyOptions) {
  const body = request.body;
  if (typeof body !== "string" && !(body instanceof Uint8Array)) {
    throw bodyAlreadyParsed(
      "fastify",
      body === undefined || body === null
        ? "the request has no raw body (request.body is empty)"
        : "the request body is already a parsed object (request.body)",
    );
  }
  return verifyAndParse(body, request.headers, signingKey, options);
}

/** What a {@link fastifyWebhook} listener gets besides the event. */
export interface FastifyWebhookContext<Request, Reply> {
  readonly request: Request;
  readonly reply: Reply;
  readonly signature: VerifiedSignature;
}

export interface FastifyWebhookOptions<Request = FastifyRequestLike, Reply = FastifyReplyLike> extends AdapterOptions {
  /** The route, such as `/webhooks/carehooks`. */
  readonly path: string;
  readonly signingKey: SigningKeys;
  /** Your code for a verified event. Send a reply yourself, or let the route answer 200 when you return. */
  readonly onEvent: (event: CarehooksEvent, context: FastifyWebhookContext<Request, Reply>) => unknown;
}

/**
 * A Fastify plugin with one `POST` route that verifies webhooks. Register it
 * (without `fastify-plugin`) so its raw-body parser stays inside the plugin.
 * A refused request gets 400 (413 when too large) with
 * `{"error": {"code", "message"}}`; a listener that throws gets a 500, so
 * carehooks retries the delivery later.
 *
 * @example
 * ```ts
 * import Fastify from "fastify";
 * import { fastifyWebhook } from "@carehooks/sdk";
 *
 * const app = Fastify();
 * await app.register(
 *   fastifyWebhook({
 *     path: "/webhooks/carehooks",
 *     signingKey: process.env.CAREHOOKS_SIGNING_KEY!,
 *     onEvent: async (event) => console.log(event.event, event.event_id),
 *   }),
 * );
 * await app.listen({ port: 3000 });
 * ```
 */
export function fastifyWebhook<Request extends FastifyRequestLike = FastifyRequestLike, Reply = FastifyReplyLike>(
  options: FastifyWebhookOptions<Request, Reply>,
): (instance: FastifyInstanceLike) => Promise<void> {
  checkKeys(options.signingKey, "fastifyWebhook");
  return async (instance) => {
    // A parent's JSON parser (default or custom) is replaced only inside this plugin.
    if (instance.hasContentTypeParser("application/json")) instance.removeContentTypeParser("application/json");
    instance.addContentTypeParser(
      "application/json",
      options.maxBodyBytes === undefined
        ? { parseAs: "buffer" }
        : { parseAs: "buffer", bodyLimit: options.maxBodyBytes },
      (_request, body, done) => done(null, body),
    );
    instance.post(options.path, async (request, reply) => {
      try {
        const { event, signature } = verifyFastify(request, options.signingKey, options);
        await options.onEvent(event, { request: request as Request, reply: reply as Reply, signature });
        if (!reply.sent) return reply.code(200).send(RECEIVED);
        return reply;
      } catch (error) {
        report(options, error);
        const answer = failureAnswer(error);
        if (reply.sent) return reply;
        return reply.code(answer.status).send(answer.body);
      }
    });
  };
}
