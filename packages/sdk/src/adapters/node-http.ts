/** A `node:http` request listener that reads the raw body itself, verifies it and hands over the typed event. */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { CarehooksEvent } from "../events.js";
import { DEFAULT_MAX_BODY_BYTES, rawBodyOf } from "../raw-body.js";
import { checkKeys, type SigningKeys, type VerifiedSignature, verifyAndParse } from "../verify.js";
import { type AdapterOptions, failureAnswer, RECEIVED, report } from "./answer.js";

/** What a `nodeHandler` listener gets besides the event. */
export interface NodeWebhookContext {
  readonly request: IncomingMessage;
  readonly response: ServerResponse;
  /** The body exactly as received. */
  readonly rawBody: Buffer;
  readonly signature: VerifiedSignature;
}

/** Your code for a verified event. Answer `response` yourself, or let the handler answer 200 when you return. */
export type NodeWebhookListener = (event: CarehooksEvent, context: NodeWebhookContext) => unknown;

/**
 * A `node:http` request listener for a webhook endpoint. It reads the raw body
 * (at most `maxBodyBytes`), verifies it, calls `listener` with the typed event
 * and answers 200 `{"received": true}` unless the listener answered. A refused
 * request gets 400 (413 when too large) with `{"error": {"code", "message"}}`;
 * a listener that throws gets a 500, so carehooks retries the delivery later.
 *
 * @example
 * ```ts
 * import http from "node:http";
 * import { nodeHandler } from "@carehooks/sdk";
 *
 * const onWebhook = nodeHandler(process.env.CAREHOOKS_SIGNING_KEY!, async (event) => {
 *   console.log(event.event, event.event_id);
 * });
 * http.createServer((req, res) => {
 *   if (req.url === "/webhooks/carehooks") return void onWebhook(req, res);
 *   res.writeHead(404).end();
 * }).listen(3000);
 * ```
 */
export function nodeHandler(
  signingKey: SigningKeys,
  listener: NodeWebhookListener,
  options: AdapterOptions = {},
): (request: IncomingMessage, response: ServerResponse) => Promise<void> {
  checkKeys(signingKey, "nodeHandler");
  return async (request, response) => {
    try {
      if (request.method !== undefined && request.method !== "POST") {
        response.writeHead(405, { allow: "POST", "content-type": "application/json" });
        response.end(JSON.stringify({ error: { code: "method_not_allowed", message: "webhooks are POSTed" } }));
        return;
      }
      const rawBody = await rawBodyOf(request, "node", options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES);
      const { event, signature } = verifyAndParse(rawBody, request.headers, signingKey, options);
      await listener(event, { request, response, rawBody, signature });
      if (!response.headersSent && !response.writableEnded) send(response, 200, RECEIVED);
    } catch (error) {
      report(options, error);
      const answer = failureAnswer(error);
      if (!response.headersSent && !response.writableEnded) send(response, answer.status, answer.body);
      else response.end();
    }
  };
}

function send(response: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  response.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
  response.end(text);
}
