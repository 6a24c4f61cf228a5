/**
 * @carehooks/sdk: verify carehooks (and Eka Care) webhooks, and call the
 * carehooks API. No runtime dependencies.
 */
export { type AdapterOptions, type ErrorBody, RECEIVED } from "./adapters/answer.js";
export {
  type ExpressNext,
  type ExpressRequestLike,
  type ExpressResponseLike,
  expressMiddleware,
  type VerifiedExpressRequest,
} from "./adapters/express.js";
export {
  type FastifyInstanceLike,
  type FastifyReplyLike,
  type FastifyRequestLike,
  type FastifyWebhookContext,
  type FastifyWebhookOptions,
  fastifyWebhook,
  verifyFastifyRequest,
} from "./adapters/fastify.js";
export { type NodeWebhookContext, type NodeWebhookListener, nodeHandler } from "./adapters/node-http.js";
export { type ApiErrorCode, CarehooksApiError, CarehooksConnectionError } from "./client/api-error.js";
export { CarehooksClient, type CarehooksClientOptions } from "./client/carehooks-client.js";
export type * from "./client/models.js";
export { paginate } from "./client/pagination.js";
export type { AppointmentsResource } from "./client/resources/appointments.js";
export type { DeliveriesResource } from "./client/resources/deliveries.js";
export type { EventsResource } from "./client/resources/events.js";
export type { PrescriptionsResource } from "./client/resources/prescriptions.js";
export type { TasksResource, WaitOptions } from "./client/resources/tasks.js";
export type { WebhooksResource } from "./client/resources/webhooks.js";
export type { TokenPair } from "./client/token-manager.js";
export type { CallOptions, HttpMethod, QueryValue, RequestSpec, TokenSource } from "./client/transport.js";
export {
  DEFAULT_DEDUPE_TTL_MS,
  type DedupeOutcome,
  type DedupeStore,
  Deduplicator,
  type DeduplicatorOptions,
  type EventIdSource,
  MemoryDedupeStore,
  type MemoryDedupeStoreOptions,
} from "./dedupe.js";
export * from "./events.js";
export { DEFAULT_MAX_BODY_BYTES, type NodeRequestLike } from "./raw-body.js";
export {
  BodyAlreadyParsedError,
  InvalidPayloadError,
  MalformedHeaderError,
  MissingHeaderError,
  NoMatchingSignatureError,
  PayloadTooLargeError,
  TimestampOutOfToleranceError,
  WebhookVerificationError,
  type WebhookVerificationErrorCode,
} from "./verification-errors.js";
export {
  DEFAULT_TOLERANCE_SECONDS,
  type RawBody,
  type SignatureScheme,
  type SignatureVerification,
  type SignInput,
  type SigningKeys,
  signatureHeaders,
  type VerifiedSignature,
  type VerifyOptions,
  verifySignature,
  verifyWebhook,
} from "./verify.js";
export { SDK_VERSION } from "./version.js";
export type { HeadersInput } from "./webhook-headers.js";
