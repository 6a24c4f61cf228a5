/** Row types of every table, as Kysely sees them. Times are Unix milliseconds. */
import type { Generated } from "kysely";

export interface SettingTable {
  key: string;
  value: string;
}

export interface BusinessTable {
  id: string;
  name: string;
  created_at: number;
}

export interface ApiClientTable {
  id: string;
  business_id: string;
  name: string;
  secret_hash: string;
  /** Space-separated scope names. */
  scopes: string;
  created_at: number;
  revoked_at: number | null;
}

export interface RefreshTokenTable {
  token_hash: string;
  client_id: string;
  /** Every token issued from one login shares a family; reuse of a spent token revokes the family. */
  family_id: string;
  created_at: number;
  expires_at: number;
  used_at: number | null;
  revoked_at: number | null;
}

import type { SubscriptionState } from "../domain/breaker.js";

export type { SubscriptionState };

export interface SubscriptionTable {
  id: string;
  business_id: string;
  endpoint: string;
  /** The normalised endpoint, unique per business among live subscriptions. */
  endpoint_key: string;
  /** JSON array of event names. */
  event_names: string;
  protocol: string;
  /** Sealed by the KeyBox; never the plain key. */
  signing_key: string | null;
  previous_signing_key: string | null;
  previous_key_expires_at: number | null;
  state: Generated<SubscriptionState>;
  state_reason: string | null;
  state_changed_at: number;
  failure_streak: Generated<number>;
  failing_since: number | null;
  probe_at: number | null;
  client_id: string;
  created_by: string;
  updated_by: string;
  created_at: number;
  updated_at: number;
  deleted_at: number | null;
  /** `per_resource`: the events of one resource reach the webhook one at a time, in the order they were written. */
  ordering: Generated<SubscriptionOrdering>;
  /** Concurrent requests to the webhook; null: the server's CAREHOOKS_MAX_IN_FLIGHT_PER_ENDPOINT. */
  max_in_flight: number | null;
  /** Requests per second to the webhook; null: no limit. */
  rate_limit: number | null;
  /** JSON: its attribute filter (domain/event-filter.ts); null: every event it asked for. */
  filter: string | null;
  /** Sealed JSON object of static request headers; null: none. */
  headers: string | null;
  /** Request timeout (ms), below the server's CAREHOOKS_REQUEST_TIMEOUT; null: the server's. */
  timeout_ms: number | null;
  /** JSON list of retry delays (ms); null: the server's CAREHOOKS_RETRY_SCHEDULE. */
  retry_schedule: string | null;
}

export type SubscriptionOrdering = "none" | "per_resource";

export interface AppointmentTable {
  id: string;
  business_id: string;
  doctor_id: string;
  patient_id: string;
  clinic_id: string;
  partner_appointment_id: string | null;
  partner_doctor_id: string | null;
  partner_patient_id: string | null;
  partner_clinic_id: string | null;
  status: string;
  mode: string;
  channel: string | null;
  start_time: number;
  end_time: number;
  /** JSON object or null. */
  payment: string | null;
  prescription_id: string | null;
  notes: string | null;
  /** JSON object or null. */
  custom_attributes: string | null;
  /** JSON object or null. */
  partner_meta: string | null;
  cancelled_by: string | null;
  created_by: string;
  updated_by: string;
  created_at: number;
  updated_at: number;
}

export interface PrescriptionTable {
  id: string;
  business_id: string;
  appointment_id: string | null;
  doctor_id: string;
  patient_id: string;
  clinic_id: string;
  current_version: number;
  created_by: string;
  updated_by: string;
  created_at: number;
  updated_at: number;
}

export interface PrescriptionVersionTable {
  prescription_id: string;
  version: number;
  doctor_name: string | null;
  patient_name: string | null;
  /** JSON array of prescription_details items. */
  details: string;
  created_by: string;
  created_at: number;
}

export interface EventTable {
  id: string;
  business_id: string;
  name: string;
  resource_type: string;
  resource_id: string;
  /** The exact text that is signed and sent. */
  payload: string;
  created_at: number;
}

export type DeliveryStatus = "pending" | "in_flight" | "succeeded" | "failed" | "cancelled";

export interface DeliveryTable {
  id: string;
  event_id: string;
  subscription_id: string;
  business_id: string;
  event_name: string;
  status: Generated<DeliveryStatus>;
  attempts: Generated<number>;
  next_attempt_at: number | null;
  lease_token: string | null;
  lease_expires_at: number | null;
  last_status_code: number | null;
  last_error: string | null;
  created_at: number;
  updated_at: number;
  /** Attempts made before the current round of the retry schedule (a resend or recover starts a new round). */
  retries_from: Generated<number>;
  /**
   * `<resource_type>:<resource_id>` of its event, what per-resource ordering
   * orders by: set when its webhook orders per resource (written at create,
   * or when the webhook switches, or when it is sent again), and kept if the
   * webhook switches back; NULL for a delivery of a webhook that never
   * ordered, so an unordered webhook's creates write no entry for it.
   */
  resource_key: string | null;
}

export interface AttemptTable {
  id: string;
  delivery_id: string;
  n: number;
  started_at: number;
  duration_ms: number;
  /**
   * JSON object of the request headers, custom header values masked, of
   * attempts made before request_meta; "{}" since (they are rebuilt from
   * request_meta when read; "{}" is what a release without it shows).
   */
  request_headers: string;
  /** What the request headers are rebuilt from (domain/request-headers.ts); null before it was kept. */
  request_meta: string | null;
  response_status: number | null;
  response_body: string | null;
  error: string | null;
}

export type TaskState = "queued" | "running" | "succeeded" | "failed";

export interface TaskTable {
  id: string;
  business_id: string;
  subscription_id: string | null;
  kind: string;
  state: TaskState;
  /** JSON object of the task's input. */
  params: string;
  total: Generated<number>;
  done: Generated<number>;
  error: string | null;
  created_at: number;
  updated_at: number;
  finished_at: number | null;
}

export type AccessOutcome = "allowed" | "forbidden" | "not_found";

export interface AccessLogTable {
  id: string;
  business_id: string;
  client_id: string;
  resource_type: string;
  resource_id: string | null;
  /** JSON array of the ids a list returned. */
  resource_ids: string | null;
  outcome: AccessOutcome;
  method: string;
  path: string;
  request_id: string;
  ip: string | null;
  user_agent: string | null;
  created_at: number;
}

export interface IdempotencyKeyTable {
  client_id: string;
  key: string;
  fingerprint: string;
  status_code: number | null;
  response_body: string | null;
  created_at: number;
  expires_at: number;
}

export interface PortalSessionTable {
  id: string;
  business_id: string;
  client_id: string;
  /** SHA-256 of the link's token, hex. */
  token_hash: string;
  /** 1: the session may read only. */
  read_only: number;
  branding: string | null;
  expires_at: number;
  used_at: number | null;
  created_at: number;
}

export interface Database {
  setting: SettingTable;
  business: BusinessTable;
  api_client: ApiClientTable;
  refresh_token: RefreshTokenTable;
  subscription: SubscriptionTable;
  appointment: AppointmentTable;
  prescription: PrescriptionTable;
  prescription_version: PrescriptionVersionTable;
  event: EventTable;
  delivery: DeliveryTable;
  access_log: AccessLogTable;
  idempotency_key: IdempotencyKeyTable;
  attempt: AttemptTable;
  task: TaskTable;
  portal_session: PortalSessionTable;
}
