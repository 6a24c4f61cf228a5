/** What every adapter answers, and the options they share. */

import { WebhookVerificationError } from "../verification-errors.js";
import type { VerifyOptions } from "../verify.js";

export interface AdapterOptions extends VerifyOptions {
  /** Largest body accepted, in bytes; larger requests get a 413. Default 1 MiB. */
  readonly maxBodyBytes?: number;
  /**
   * Called with every failure: refused requests (`WebhookVerificationError`),
   * set-up errors (`BodyAlreadyParsedError`) and errors thrown by your handler.
   * By default only the last two are logged, with `console.error`.
   */
  readonly onError?: (error: unknown) => void;
}

/** The JSON body of an answer to a refused or failed webhook request. */
export interface ErrorBody {
  readonly error: { readonly code: string; readonly message: string };
}

/** The answer to a verified webhook whose handler did not answer itself. */
export const RECEIVED = { received: true } as const;

/** Status and body for a failure: the verification error's own, else a 500 that says nothing more. */
export function failureAnswer(error: unknown): { status: number; body: ErrorBody } {
  if (error instanceof WebhookVerificationError) {
    return { status: error.status, body: { error: { code: error.code, message: error.message } } };
  }
  // carehooks retries a 5xx, so a failed handler gets the event again later.
  const code = (error as { code?: unknown })?.code === "body_already_parsed" ? "body_already_parsed" : "handler_failed";
  return { status: 500, body: { error: { code, message: "the webhook could not be processed" } } };
}

export function report(options: AdapterOptions, error: unknown): void {
  if (options.onError) options.onError(error);
  else if (!(error instanceof WebhookVerificationError)) console.error("carehooks webhook:", error);
}
