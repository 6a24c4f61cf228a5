/** The one place where anything thrown becomes an answer in the catalog's shape. */
import type { Duplex } from "node:stream";
import type { FastifyError, FastifyReply, FastifyRequest } from "fastify";
import { ApiError, type ErrorCode, invalidRequest } from "../domain/errors.js";
import { newId } from "../domain/ids.js";
import type { DialectAdapter } from "../store/dialect/adapter.js";

const RETRY_AFTER_SECONDS = "5";

const FASTIFY_CODES: Record<string, ErrorCode> = {
  FST_ERR_CTP_BODY_TOO_LARGE: "PAYLOAD_TOO_LARGE",
  FST_ERR_CTP_INVALID_MEDIA_TYPE: "UNSUPPORTED_MEDIA_TYPE",
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: "INVALID_REQUEST",
  FST_ERR_CTP_EMPTY_JSON_BODY: "INVALID_REQUEST",
  FST_ERR_CTP_INVALID_JSON_BODY: "INVALID_REQUEST",
  FST_ERR_BAD_URL: "INVALID_REQUEST",
};

const MESSAGES: Partial<Record<ErrorCode, string>> = {
  PAYLOAD_TOO_LARGE: "request body is larger than the limit",
  UNSUPPORTED_MEDIA_TYPE: "send the body as application/json",
};

const FASTIFY_MESSAGES: Record<string, string> = {
  FST_ERR_CTP_INVALID_JSON_BODY: "body is not valid JSON",
  FST_ERR_CTP_EMPTY_JSON_BODY: "body is empty but content-type is application/json",
  FST_ERR_BAD_URL: "the URL is malformed",
};

interface ValidationIssue {
  instancePath?: string;
  message?: string;
  keyword?: string;
  params?: Record<string, unknown>;
}

function describeValidation(error: FastifyError): string {
  const issue = (error.validation?.[0] ?? {}) as ValidationIssue;
  const where = `${error.validationContext ?? "body"}${issue.instancePath ?? ""}`.replaceAll("/", ".");
  if (issue.keyword === "additionalProperties") {
    return `${where} has unknown field "${String(issue.params?.additionalProperty)}"`;
  }
  if (issue.keyword === "required") return `${where} is missing "${String(issue.params?.missingProperty)}"`;
  const allowed = allowedValues(error.validation as ValidationIssue[], issue.instancePath ?? "");
  if (allowed.length > 0) return `${where} must be one of ${allowed.join(", ")}`;
  return `${where} ${issue.message ?? "is invalid"}`;
}

/**
 * The values a field may take, when what failed is a choice among constants:
 * an `enum`, or a union of literals (an `anyOf` whose branches each failed
 * with `const`), so the answer can list them instead of "must be equal to
 * constant".
 */
function allowedValues(issues: readonly ValidationIssue[], path: string): string[] {
  const values: string[] = [];
  for (const issue of issues) {
    if ((issue.instancePath ?? "") !== path) continue;
    if (issue.keyword === "enum" && Array.isArray(issue.params?.allowedValues)) {
      values.push(...(issue.params.allowedValues as unknown[]).map(String));
    } else if (issue.keyword === "const") {
      values.push(String(issue.params?.allowedValue));
    }
  }
  return [...new Set(values)];
}

/** Maps anything a handler or Fastify threw to a catalogued ApiError; undefined means "a bug". */
export function toApiError(error: unknown, adapter: DialectAdapter): ApiError | undefined {
  if (error instanceof ApiError) return error;
  const fastifyError = error as FastifyError;
  if (fastifyError.validation) return invalidRequest(describeValidation(fastifyError));
  const code = fastifyError.code ? FASTIFY_CODES[fastifyError.code] : undefined;
  if (code) return new ApiError(code, MESSAGES[code] ?? FASTIFY_MESSAGES[fastifyError.code] ?? fastifyError.message);
  if (error instanceof SyntaxError && fastifyError.statusCode === 400) return invalidRequest("body is not valid JSON");
  if (adapter.isInvalidText(error)) return invalidRequest("text must not contain NUL bytes or invalid characters");
  const unavailable = adapter.isUnavailable(error)
    ? "the database is unavailable; try again shortly"
    : adapter.isTransientAbort(error)
      ? "the write was rolled back to break a deadlock with concurrent work, and not made; try again"
      : undefined;
  if (unavailable) return new ApiError("SERVICE_UNAVAILABLE", unavailable, { "retry-after": RETRY_AFTER_SECONDS });
  const status = fastifyError.statusCode;
  if (typeof status === "number" && status >= 400 && status < 500) {
    if (status === 413) return new ApiError("PAYLOAD_TOO_LARGE", MESSAGES.PAYLOAD_TOO_LARGE as string);
    if (status === 415) return new ApiError("UNSUPPORTED_MEDIA_TYPE", MESSAGES.UNSUPPORTED_MEDIA_TYPE as string);
    return invalidRequest(fastifyError.message);
  }
  return undefined;
}

export function sendError(reply: FastifyReply, request: FastifyRequest, error: ApiError): FastifyReply {
  return reply
    .status(error.status)
    .headers(error.headers)
    .send({ error: { code: error.code, message: error.message, request_id: request.id } });
}

export function handleError(adapter: DialectAdapter) {
  return (error: unknown, request: FastifyRequest, reply: FastifyReply): FastifyReply => {
    const apiError = toApiError(error, adapter);
    if (apiError) {
      if (apiError.status >= 500) request.log.warn({ err: error }, apiError.message);
      return sendError(reply, request, apiError);
    }
    request.log.error({ err: error }, "unhandled error");
    return sendError(
      reply,
      request,
      new ApiError("SERVER_ERROR", "internal error; quote the request id when reporting it"),
    );
  };
}

/**
 * For requests too broken to reach Fastify's handlers (bad headers, oversized
 * header block): a catalog-shaped answer written straight to the socket.
 */
export function writeClientError(error: Error & { code?: string }, socket: Duplex): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const tooLarge = error.code === "HPE_HEADER_OVERFLOW";
  const status = tooLarge ? 431 : 400;
  const body = JSON.stringify({
    error: {
      code: "INVALID_REQUEST",
      message: tooLarge ? "request headers are too large" : "malformed HTTP request",
      request_id: newId("request"),
    },
  });
  socket.end(
    `HTTP/1.1 ${status} ${tooLarge ? "Request Header Fields Too Large" : "Bad Request"}\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
  );
}
