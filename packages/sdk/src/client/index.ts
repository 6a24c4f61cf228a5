/**
 * `@carehooks/sdk/client`: the API client alone, without the webhook
 * verification (which needs `node:crypto`), so a browser bundle such as the
 * dashboard can use it.
 */

export { EVENT_NAMES, type EventName } from "../events.js";
export { type ApiErrorCode, CarehooksApiError, CarehooksConnectionError } from "./api-error.js";
export { CarehooksClient, type CarehooksClientOptions } from "./carehooks-client.js";
export type * from "./models.js";
export { paginate } from "./pagination.js";
export type { TasksResource, WaitOptions } from "./resources/tasks.js";
export type { TokenPair } from "./token-manager.js";
export type { CallOptions, HttpMethod, QueryValue, RequestSpec, TokenSource } from "./transport.js";
