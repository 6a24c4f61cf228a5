/**
 * The objects of the carehooks HTTP API (docs/openapi.json).
 * API resources show times as ISO-8601 UTC strings (`2026-11-28T23:40:10Z`).
 */
import type { EventName } from "../events.js";

/** One page of a list: pass `next_cursor` back as `cursor` for the next page; null on the last one. */
export interface Page<T> {
  readonly data: T[];
  readonly next_cursor: string | null;
  readonly msg: string;
}

/** Paging parameters every list takes. */
export interface PageParams {
  /** 1–500, default 50. */
  readonly limit?: number;
  readonly cursor?: string;
}

/** A time filter: an ISO-8601 string, Unix seconds, or a `Date`. */
export type TimeInput = string | number | Date;

export type WebhookState = "active" | "degraded" | "disabled";

/** `hmac-sha256`: a shared key; `ed25519`: a key pair the server generates, verified with its public key. */
export type WebhookSignatureScheme = "hmac-sha256" | "ed25519";

/** A webhook subscription. */
export interface Webhook {
  readonly id: string;
  readonly endpoint: string;
  readonly event_names: EventName[];
  /** Whether requests are signed. The key is never in a read: see `webhooks.secret(id)`. */
  readonly signed: boolean;
  /** How requests are signed; null: unsigned. */
  readonly signature_scheme: WebhookSignatureScheme | null;
  /** An ed25519 webhook's public key (`whpk_…`), to verify its requests with; null otherwise. */
  readonly public_key: string | null;
  /** After an ed25519 rotation: the replaced key's public key while it still signs. */
  readonly previous_public_key: string | null;
  readonly protocol: "http" | "https";
  readonly client_id: string;
  readonly state: WebhookState;
  readonly state_reason: string | null;
  readonly state_changed_at: string;
  /** After a key rotation: until when the replaced key keeps signing alongside the new one; null otherwise. */
  readonly previous_key_expires_at?: string | null;
  /** `per_resource`: one resource's events one at a time, in the order written. */
  readonly ordering: WebhookOrdering;
  /** Requests open to the webhook at once; null: the server's cap. */
  readonly max_in_flight: number | null;
  /** Requests per second to the webhook; null: no limit. */
  readonly rate_limit: number | null;
  /** Seconds an attempt may take; null: the server's CAREHOOKS_REQUEST_TIMEOUT. */
  readonly timeout: number | null;
  /** Seconds to wait after each failed attempt; null: the server's schedule. */
  readonly retry_schedule: number[] | null;
  /** Conditions on the event's payload; null: every event asked for. */
  readonly filter: WebhookFilter | null;
  /** Static request headers' names, every value shown as "********"; null: none. */
  readonly headers: Record<string, string> | null;
  readonly created_at: string;
  readonly updated_at: string;
  readonly created_by: string;
  readonly updated_by: string;
}

export type WebhookOrdering = "none" | "per_resource";

/** A scalar a filter compares a payload field with. */
export type FilterValue = string | number | boolean | null;

/** The operators on one payload field; several must all hold. */
export interface FieldCondition {
  readonly $eq?: FilterValue;
  readonly $neq?: FilterValue;
  readonly $in?: readonly FilterValue[];
  readonly $nin?: readonly FilterValue[];
  /** Present and not null. */
  readonly $exists?: boolean;
}

/**
 * A webhook's attribute filter: dotted payload paths (`data.clinic_id`) to a
 * value (equality) or a FieldCondition, all of which must hold, plus `$and`,
 * `$or` and `$not`.
 */
export type WebhookFilter = {
  readonly $and?: readonly WebhookFilter[];
  readonly $or?: readonly WebhookFilter[];
  readonly $not?: WebhookFilter;
} & { readonly [path: string]: FilterValue | FieldCondition | readonly WebhookFilter[] | WebhookFilter | undefined };

/** A webhook's own delivery settings; on update, null sets one back to the server's default. */
export interface WebhookSettings {
  readonly ordering?: WebhookOrdering;
  /** 1 to the server's CAREHOOKS_MAX_IN_FLIGHT_PER_ENDPOINT. */
  readonly max_in_flight?: number | null;
  /** 1 to 10 000 requests per second. */
  readonly rate_limit?: number | null;
  /** 1 to the server's CAREHOOKS_REQUEST_TIMEOUT, in seconds. */
  readonly timeout?: number | null;
  /** Seconds after each failed attempt, at most as many as the server's schedule; [] never retries. */
  readonly retry_schedule?: readonly number[] | null;
  /** Only events matching it are delivered. */
  readonly filter?: WebhookFilter | null;
  /** Sent with every attempt; not content-type, user-agent, webhook-*, eka-* or hop-by-hop headers. */
  readonly headers?: Readonly<Record<string, string>> | null;
}

export interface CreateWebhookInput extends WebhookSettings {
  /** Absolute https URL (http only when the server allows it). */
  readonly endpoint: string;
  readonly event_names: readonly EventName[];
  /** 16–256 printable ASCII characters, or `whsec_` + base64 of 24–64 bytes. Omit for unsigned requests. */
  readonly signing_key?: string | null;
  /** Have the server generate a `whsec_` key instead; the answer's `signing_key` shows it this once. */
  readonly generate_signing_key?: boolean;
  /** `ed25519`: the server generates a key pair; the answer's `public_key` is what receivers verify with. */
  readonly signature_scheme?: WebhookSignatureScheme;
  readonly protocol?: "http" | "https";
}

export interface UpdateWebhookInput extends WebhookSettings {
  readonly endpoint?: string;
  readonly event_names?: readonly EventName[];
  /** A new key; the old one keeps signing alongside it for the server's key overlap. null removes the key. */
  readonly signing_key?: string | null;
  /** Rotate to a key the server generates; the answer's `signing_key` shows it this once. */
  readonly generate_signing_key?: boolean;
  /** Stop signing with the replaced key now. */
  readonly expire_previous_key?: boolean;
  /** Switch scheme: to `ed25519` generates a pair; to `hmac-sha256` needs `signing_key` or `generate_signing_key`. */
  readonly signature_scheme?: WebhookSignatureScheme;
  readonly protocol?: "http" | "https";
}

/** Answer of `POST /subscriptions`. */
export interface CreatedWebhook {
  readonly id: string;
  readonly status: "success";
  /** Only when `generate_signing_key` was set: the generated key, shown this once. */
  readonly signing_key?: string;
  /** Only for an ed25519 webhook: its public key. */
  readonly public_key?: string;
}

/** Answer of `PATCH /subscriptions/{id}`. */
export interface UpdatedWebhook extends StatusMessage {
  /** Only when `generate_signing_key` was set: the generated key, shown this once. */
  readonly signing_key?: string;
  /** Only when a new ed25519 pair was generated: its public key. */
  readonly public_key?: string;
}

/** Answer of `GET /subscriptions/{id}/secret` (scope `webhooks:write`). */
export interface WebhookSecret {
  /** null: requests go unsigned. */
  readonly signing_key: string | null;
  /** The replaced key while it still signs alongside the new one. */
  readonly previous_signing_key: string | null;
  readonly previous_key_expires_at: string | null;
}

/** Answer of `PATCH` and `DELETE /subscriptions/{id}`. */
export interface StatusMessage {
  readonly status: string;
  readonly msg: string;
}

export type DeliveryStatus = "pending" | "in_flight" | "succeeded" | "failed" | "cancelled";

/** One event on its way to one subscription. */
export interface Delivery {
  readonly id: string;
  readonly event_id: string;
  readonly subscription_id: string;
  readonly event_name: string;
  readonly status: DeliveryStatus;
  /** Attempts made so far. */
  readonly attempts: number;
  readonly next_attempt_at: string | null;
  readonly last_status_code: number | null;
  readonly last_error: string | null;
  readonly created_at: string;
  readonly updated_at: string;
}

/** One HTTP attempt of a delivery. */
export interface Attempt {
  readonly id: string;
  readonly n: number;
  readonly started_at: string;
  readonly duration_ms: number;
  /** Sent headers, secrets removed. */
  readonly request_headers: Record<string, string>;
  readonly response_status: number | null;
  /** The first 4 KiB. */
  readonly response_body: string | null;
  readonly error: string | null;
}

/** A delivery with its attempts (`GET /deliveries/{id}`). */
export interface DeliveryDetail extends Omit<Delivery, "attempts"> {
  readonly attempts: Attempt[];
}

/** Lists read oldest first; `desc` reads newest first (the cursor pages either way). */
export type ListOrder = "asc" | "desc";

export interface DeliveryFilters extends PageParams {
  readonly order?: ListOrder;
  readonly status?: DeliveryStatus;
  readonly event_name?: EventName;
  readonly since?: TimeInput;
  readonly until?: TimeInput;
}

export interface RecoverInput {
  /** Re-queue failed and cancelled deliveries created at or after this time … */
  readonly since: TimeInput;
  /** … and before this one (default now). */
  readonly until?: TimeInput;
}

export type TaskState = "queued" | "running" | "succeeded" | "failed";

/** A background job, such as a recover. */
export interface Task {
  readonly id: string;
  readonly kind: string;
  readonly state: TaskState;
  readonly total: number;
  readonly done: number;
  readonly error: string | null;
  readonly created_at: string;
  readonly finished_at: string | null;
}

/** An event as stored (`GET /events`). */
export interface StoredEvent {
  readonly id: string;
  readonly event_name: string;
  readonly resource_type: string;
  readonly resource_id: string;
  /** The payload exactly as delivered. */
  readonly payload: unknown;
  readonly created_at: string;
}

export interface EventFilters extends PageParams {
  readonly order?: ListOrder;
  readonly event_name?: EventName;
  readonly resource_id?: string;
  readonly since?: TimeInput;
  readonly until?: TimeInput;
}

export type AppointmentStatus = "BK" | "OG" | "CM" | "CMNP" | "CN" | "CND" | "CNS" | "NS";

export interface Payment {
  readonly payment_id?: string | null;
  readonly payment_status: "paid" | "unpaid" | "partially_paid";
  readonly amount?: number | null;
}

/** An appointment's details (Eka's flat shape). */
export interface Appointment {
  readonly appointment_id: string;
  readonly doctor_id: string;
  readonly patient_id: string;
  readonly clinic_id: string;
  readonly partner_appointment_id: string | null;
  readonly partner_doctor_id: string | null;
  readonly partner_patient_id: string | null;
  readonly partner_clinic_id: string | null;
  readonly status: AppointmentStatus;
  readonly mode: "in_clinic" | "tele";
  readonly channel: string | null;
  readonly start_time: string;
  readonly end_time: string;
  readonly payment: Payment | null;
  readonly prescription_id: string | null;
  readonly notes: string | null;
  readonly custom_attributes: Record<string, unknown> | null;
  readonly partner_meta: Record<string, unknown> | null;
  readonly cancelled_by: string | null;
  readonly created_at: string;
  readonly updated_at: string;
}

export interface AppointmentFilters extends PageParams {
  readonly clinic_id?: string;
  readonly doctor_id?: string;
  readonly patient_id?: string;
  readonly status?: AppointmentStatus;
  /** Start time from … */
  readonly from?: TimeInput;
  /** … to. */
  readonly to?: TimeInput;
}

/** One item of a prescription, keyed by `resource_type`. */
export interface PrescriptionItem {
  readonly resource_type: "medicationrequest" | "condition" | "advices" | "vitals" | "follow_up" | "notes";
  readonly [field: string]: string | number | boolean | null;
}

/** One version of a prescription. */
export interface Prescription {
  readonly prescription_id: string;
  readonly appointment_id: string | null;
  readonly doctor_id: string;
  readonly patient_id: string;
  readonly clinic_id: string;
  readonly doctor_name: string | null;
  readonly patient_name: string | null;
  /** This version. */
  readonly version: number;
  readonly current_version: number;
  readonly prescription_details: PrescriptionItem[];
  readonly created_at: string;
  /** When this version was written. */
  readonly updated_at: string;
}

/** A {@link TimeInput} as the API takes it: ISO-8601 text or Unix seconds. */
export function timeParam(value: TimeInput | undefined): string | number | undefined {
  if (value instanceof Date) return value.toISOString();
  return value;
}
