/**
 * Express middleware. Typed structurally (no dependency on express): it works
 * with Express 4 and 5 and anything shaped like them.
 */
import type { CarehooksEvent } from "../events.js";
import { DEFAULT_MAX_BODY_BYTES, type NodeRequestLike, rawBodyOf } from "../raw-body.js";
import { BodyAlreadyParsedError } from "../verification-errors.js";
import { checkKeys, type SigningKeys, type VerifiedSignature, verifyAndParse } from "../verify.js";
import { type AdapterOptions, failureAnswer, report } from "./answer.js";

/** The parts of an Express request the middleware uses; it adds `carehooksEvent` and `carehooksSignature`. */
export interface ExpressRequestLike extends NodeRequestLike {
  carehooksEvent?: CarehooksEvent;
  carehooksSignature?: VerifiedSignature;
}

/** The parts of an Express response the middleware uses. */
export interface ExpressResponseLike {
  readonly headersSent: boolean;
  status(code: number): ExpressResponseLike;
  json(body: unknown): unknown;
}

export type ExpressNext = (error?: unknown) => void;

/** A request that went through {@link expressMiddleware}. */
export interface VerifiedExpressRequest {
  carehooksEvent: CarehooksEvent;
  carehooksSignature: VerifiedSignature;
}

/**
 * Express middleware that verifies a webhook request, puts the typed event on
 * `req.carehooksEvent` and calls `next()`. A refused request is answered 400
 * (413 when too large) with `{"error": {"code", "message"}}`; a set-up error
 * (`BodyAlreadyParsedError`: `express.json` parsed the body first) goes to
 * `next(error)`.
 *
 * Give it the raw body: mount `express.raw({ type: "application/json" })` on
 * the webhook route, ahead of any `app.use(express.json())`. With no body
 * parser at all it reads the request stream itself.
 *
 * @example
 * ```ts
 * import express from "express";
 * import { expressMiddleware, type VerifiedExpressRequest } from "@carehooks/sdk";
 *
 * const app = express();
 * app.post(
 *   "/webhooks/carehooks",
 *   express.raw({ type: "application/json" }),
 *   expressMiddleware(process.env.CAREHOOKS_SIGNING_KEY!),
 *   (req, res) => {
 *     const { carehooksEvent: event } = req as unknown as VerifiedExpressRequest;
 *     console.log(event.event, event.event_id);
 *     res.sendStatus(204);
 *   },
 * );
 * app.use(express.json()); // the rest of the app, after the webhook route
 * ```
 */
export function expressMiddleware(
  signingKey: SigningKeys,
  options: AdapterOptions = {},
): (req: ExpressRequestLike, res: ExpressResponseLike, next: ExpressNext) => Promise<void> {
  checkKeys(signingKey, "expressMiddleware");
  return async (req, res, next) => {
    let verified: ReturnType<typeof verifyAndParse>;
    try {
      const rawBody = await rawBodyOf(req, "express", options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES);
      verified = verifyAndParse(rawBody, req.headers, signingKey, options);
    } catch (error) {
      report(options, error);
      if (error instanceof BodyAlreadyParsedError || !isRefusal(error)) {
        next(error);
        return;
      }
      const answer = failureAnswer(error);
      if (!res.headersSent) res.status(answer.status).json(answer.body);
      return;
    }
    req.carehooksEvent = verified.event;
    req.carehooksSignature = verified.signature;
    next();
  };
}

function isRefusal(error: unknown): boolean {
  return failureAnswer(error).status < 500;
}
