/** Errors of the API client: the API's own error answers, and failures to reach it at all. */

/** Error codes of the carehooks API (docs/errors.md); other strings may appear from other servers or proxies. */
export type ApiErrorCode =
  | "INVALID_REQUEST"
  | "UNAUTHORIZED"
  | "FORBIDDEN"
  | "NOT_FOUND"
  | "METHOD_NOT_ALLOWED"
  | "CONFLICT"
  | "IDEMPOTENCY_MISMATCH"
  | "PAYLOAD_TOO_LARGE"
  | "UNSUPPORTED_MEDIA_TYPE"
  | "RATE_LIMITED"
  | "SERVICE_UNAVAILABLE"
  | "SERVER_ERROR"
  | (string & {});

const CODE_BY_STATUS: Record<number, ApiErrorCode> = {
  400: "INVALID_REQUEST",
  401: "UNAUTHORIZED",
  403: "FORBIDDEN",
  404: "NOT_FOUND",
  405: "METHOD_NOT_ALLOWED",
  409: "CONFLICT",
  413: "PAYLOAD_TOO_LARGE",
  415: "UNSUPPORTED_MEDIA_TYPE",
  429: "RATE_LIMITED",
  503: "SERVICE_UNAVAILABLE",
};

/** The API answered with an error: `{"error": {"code", "message", "request_id"}}`. */
export class CarehooksApiError extends Error {
  /** The HTTP status. */
  readonly status: number;
  /** The API's error code, such as `NOT_FOUND`; derived from the status when the body had none. */
  readonly code: ApiErrorCode;
  /** The request id (also the `x-request-id` header): quote it when reporting a problem. */
  readonly requestId: string | undefined;
  /** `Retry-After` in milliseconds, when the answer had one. */
  readonly retryAfterMs: number | undefined;
  readonly method: string;
  readonly path: string;

  constructor(init: {
    status: number;
    code?: string | undefined;
    message?: string | undefined;
    requestId?: string | undefined;
    retryAfterMs?: number | undefined;
    method: string;
    path: string;
  }) {
    const code = init.code ?? CODE_BY_STATUS[init.status] ?? (init.status >= 500 ? "SERVER_ERROR" : "HTTP_ERROR");
    super(init.message ?? `${init.method} ${init.path} answered ${init.status}`);
    this.name = "CarehooksApiError";
    this.status = init.status;
    this.code = code;
    this.requestId = init.requestId;
    this.retryAfterMs = init.retryAfterMs;
    this.method = init.method;
    this.path = init.path;
  }
}

/** The API could not be reached (refused, reset, DNS, timeout) even after the retries. */
export class CarehooksConnectionError extends Error {
  readonly code: "CONNECTION_ERROR" | "TIMEOUT";
  readonly method: string;
  readonly path: string;

  constructor(init: { timedOut: boolean; method: string; path: string; cause: unknown }) {
    super(
      init.timedOut
        ? `${init.method} ${init.path} timed out`
        : `${init.method} ${init.path} failed: ${(init.cause as Error)?.message ?? String(init.cause)}`,
      { cause: init.cause },
    );
    this.name = "CarehooksConnectionError";
    this.code = init.timedOut ? "TIMEOUT" : "CONNECTION_ERROR";
    this.method = init.method;
    this.path = init.path;
  }
}
