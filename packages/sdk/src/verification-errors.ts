/**
 * Why a webhook request was refused. Every class carries a stable `code` so a
 * receiver can log or count refusals without matching on messages, and every
 * one extends `WebhookVerificationError`, so one `instanceof` catches them all.
 */

/** The stable codes of {@link WebhookVerificationError}. */
export type WebhookVerificationErrorCode =
  | "missing_header"
  | "malformed_header"
  | "timestamp_out_of_tolerance"
  | "no_matching_signature"
  | "invalid_payload"
  | "payload_too_large";

/** The request is not an authentic, fresh carehooks webhook. Answer it with a 4xx (adapters use `status`). */
export class WebhookVerificationError extends Error {
  /** Stable, machine-readable reason. */
  readonly code: WebhookVerificationErrorCode;
  /** The HTTP status an adapter answers with. */
  readonly status: number;

  constructor(code: WebhookVerificationErrorCode, message: string, status = 400) {
    super(message);
    this.name = new.target.name;
    this.code = code;
    this.status = status;
  }
}

/** Neither signature header, or a header the signature scheme needs (`webhook-id`, `webhook-timestamp`), is absent. */
export class MissingHeaderError extends WebhookVerificationError {
  /** The lower-case names of the headers that were looked for. */
  readonly headers: readonly string[];

  constructor(headers: readonly string[]) {
    super(
      "missing_header",
      headers.length === 1
        ? `the ${headers[0]} header is missing`
        : `none of the headers ${headers.join(", ")} is present`,
    );
    this.headers = headers;
  }
}

/** A signature header is present but cannot be parsed (no `t=`, no `v1` entry, a non-numeric timestamp …). */
export class MalformedHeaderError extends WebhookVerificationError {
  /** The lower-case name of the header. */
  readonly header: string;

  constructor(header: string, detail: string) {
    super("malformed_header", `the ${header} header is malformed: ${detail}`);
    this.header = header;
  }
}

/**
 * The signature matched, but its timestamp is further from the receiver's clock
 * than the tolerance: a replayed request, or a badly skewed clock.
 */
export class TimestampOutOfToleranceError extends WebhookVerificationError {
  /** The signed timestamp, Unix seconds. */
  readonly timestamp: number;
  /** The receiver's clock when it checked, Unix seconds. */
  readonly now: number;
  readonly toleranceSeconds: number;

  constructor(timestamp: number, now: number, toleranceSeconds: number) {
    super(
      "timestamp_out_of_tolerance",
      `the signature timestamp ${timestamp} is ${Math.abs(now - timestamp)} s from the receiver's clock (${now}); the tolerance is ${toleranceSeconds} s`,
    );
    this.timestamp = timestamp;
    this.now = now;
    this.toleranceSeconds = toleranceSeconds;
  }
}

/**
 * No `v1` entry matches the body under the signing key: the body was changed
 * (or re-serialised, see `BodyAlreadyParsedError`), or the key is not this
 * subscription's.
 */
export class NoMatchingSignatureError extends WebhookVerificationError {
  constructor() {
    super(
      "no_matching_signature",
      "no signature matches the raw body under the signing key (was the body changed or re-serialised, or is the key wrong?)",
    );
  }
}

/** The signature is valid but the body is not a JSON object. carehooks never sends such a body. */
export class InvalidPayloadError extends WebhookVerificationError {
  constructor(detail: string) {
    super("invalid_payload", `the webhook body is not a JSON event: ${detail}`);
  }
}

/** The request body is larger than the adapter's `maxBodyBytes`. */
export class PayloadTooLargeError extends WebhookVerificationError {
  readonly limit: number;

  constructor(limit: number) {
    super("payload_too_large", `the webhook body is larger than ${limit} bytes`, 413);
    this.limit = limit;
  }
}

/**
 * A set-up error, not a bad request: the framework parsed (or consumed) the
 * body before the webhook adapter saw it, so the exact bytes that were signed
 * are gone. Re-serialised JSON almost never matches the signature. The message
 * says how to fix the set-up.
 */
export class BodyAlreadyParsedError extends Error {
  readonly code = "body_already_parsed";

  constructor(message: string) {
    super(message);
    this.name = "BodyAlreadyParsedError";
  }
}
