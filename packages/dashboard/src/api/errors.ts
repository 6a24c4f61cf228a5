/** Any failure of an API call, in words a person can act on, with the request id to quote. */
import { CarehooksApiError, CarehooksConnectionError } from "@carehooks/sdk/client";

export interface Problem {
  readonly title: string;
  readonly detail: string;
  readonly requestId: string | undefined;
}

const TITLES: Record<string, string> = {
  INVALID_REQUEST: "The server did not accept this",
  UNAUTHORIZED: "You are not signed in (or your session ended)",
  FORBIDDEN: "Your client is not allowed to do this",
  NOT_FOUND: "Not found",
  CONFLICT: "This cannot be done right now",
  RATE_LIMITED: "Too many requests: wait a moment and try again",
  SERVICE_UNAVAILABLE: "The server is unavailable: try again shortly",
  SERVER_ERROR: "The server failed",
};

export function describeProblem(error: unknown): Problem {
  if (error instanceof CarehooksApiError) {
    return {
      title: TITLES[error.code] ?? `The server answered ${error.status}`,
      detail: error.message,
      requestId: error.requestId,
    };
  }
  if (error instanceof CarehooksConnectionError) {
    return {
      title: error.code === "TIMEOUT" ? "The server took too long to answer" : "The server could not be reached",
      detail: "Check your connection; the dashboard retries on its own a few times first.",
      requestId: undefined,
    };
  }
  return { title: "Something went wrong", detail: (error as Error)?.message ?? String(error), requestId: undefined };
}
