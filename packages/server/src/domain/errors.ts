/**
 * The error catalog: every error an API caller can see, once, with its stable
 * code and HTTP status. Handlers throw `ApiError`; the HTTP edge turns it into
 * `{"error": {"code", "message", "request_id"}}` and nothing else.
 */

export const ERROR_CATALOG = {
  INVALID_REQUEST: 400,
  UNAUTHORIZED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  METHOD_NOT_ALLOWED: 405,
  CONFLICT: 409,
  IDEMPOTENCY_MISMATCH: 409,
  PAYLOAD_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  RATE_LIMITED: 429,
  SERVER_ERROR: 500,
  SERVICE_UNAVAILABLE: 503,
} as const;

export type ErrorCode = keyof typeof ERROR_CATALOG;

export class ApiError extends Error {
  override name = "ApiError";
  readonly status: number;

  constructor(
    readonly code: ErrorCode,
    message: string,
    /** Extra response headers, such as `Retry-After` or `Allow`. */
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(message);
    this.status = ERROR_CATALOG[code];
  }
}

export const invalidRequest = (message: string) => new ApiError("INVALID_REQUEST", message);
/**
 * A 401 with the challenge RFC 6750 asks for: `Bearer realm="carehooks"`, and
 * `error="invalid_token"` with a description when a token was sent but cannot
 * be used (expired, invalid, its client revoked).
 */
export function unauthorized(message = "missing, invalid or expired token", tokenProblem?: string): ApiError {
  const challenge =
    tokenProblem === undefined
      ? 'Bearer realm="carehooks"'
      : `Bearer realm="carehooks", error="invalid_token", error_description="${tokenProblem.replaceAll('"', "'")}"`;
  return new ApiError("UNAUTHORIZED", message, { "www-authenticate": challenge });
}
export const forbidden = (message: string) => new ApiError("FORBIDDEN", message);
export const notFound = (what: string) => new ApiError("NOT_FOUND", `${what} not found`);
export const conflict = (message: string) => new ApiError("CONFLICT", message);
