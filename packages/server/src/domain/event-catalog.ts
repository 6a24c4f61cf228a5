/**
 * The event catalog: every event a subscription can ask for, with the JSON
 * Schema of its payload and an example. The schemas are the single source for
 * `GET /event-types`, the payload builder's tests and the SDK's types.
 * Payloads carry ids and the action only, never clinical content.
 */
import { type Static, type TSchema, Type } from "@sinclair/typebox";
import { filterFieldsOf } from "./event-filter.js";

export const APPOINTMENT_STATUSES = ["BK", "OG", "CM", "CMNP", "CN", "CND", "CNS", "NS"] as const;
export type AppointmentStatus = (typeof APPOINTMENT_STATUSES)[number];

export const APPOINTMENT_ACTIONS = ["created", "modified", "started", "completed", "cancelled", "no_show"] as const;
export type AppointmentAction = (typeof APPOINTMENT_ACTIONS)[number];
export type PrescriptionAction = "created" | "updated";

const literals = <T extends string>(values: readonly T[]) => Type.Union(values.map((value) => Type.Literal(value)));
const unixSeconds = (description = "Unix seconds") => Type.Integer({ minimum: 0, description });

function envelope<S extends string, E extends string, D extends TSchema>(service: S, event: E, data: D) {
  return Type.Object(
    {
      service: Type.Literal(service),
      event: Type.Literal(event),
      event_id: Type.String({
        pattern: "^evt_[0-9A-Z]{26}$",
        description: "Equals the webhook-id header; de-duplicate on it.",
      }),
      event_time: unixSeconds("When the change happened (Unix seconds)."),
      timestamp: unixSeconds("When the webhook was generated (Unix seconds)."),
      transaction_id: Type.String({ description: "The id of the API request that caused the change." }),
      client_id: Type.String({ description: "The API client whose request caused the change." }),
      business_id: Type.String(),
      test: Type.Optional(
        Type.Literal(true, {
          description:
            "Only on a test event (`webhooks test`, `POST …/subscriptions/{id}/test`): its ids are examples that do not exist; acknowledge it without fetching anything.",
        }),
      ),
      data: data,
    },
    { additionalProperties: false },
  );
}

function appointmentData<A extends TSchema>(action: A) {
  return Type.Object(
    {
      appointment_id: Type.String(),
      doctor_id: Type.String(),
      patient_id: Type.String(),
      clinic_id: Type.String(),
      partner_appointment_id: Type.Union([Type.String(), Type.Null()]),
      status: literals(APPOINTMENT_STATUSES),
      action,
      created_at: unixSeconds(),
      modified_at: unixSeconds(),
    },
    { additionalProperties: false },
  );
}

function prescriptionData<A extends TSchema>(action: A) {
  return Type.Object(
    {
      prescription_id: Type.String(),
      appointment_id: Type.Union([Type.String(), Type.Null()]),
      doctor_id: Type.String(),
      patient_id: Type.String(),
      clinic_id: Type.String(),
      action,
      current_version: Type.Integer({ minimum: 1 }),
      previous_version: Type.Union([Type.Integer({ minimum: 1 }), Type.Null()]),
      created_at: unixSeconds(),
      modified_at: unixSeconds(),
    },
    { additionalProperties: false },
  );
}

export const AppointmentCreated = envelope(
  "appointment",
  "appointment.created",
  appointmentData(Type.Literal("created")),
);
export const AppointmentUpdated = envelope(
  "appointment",
  "appointment.updated",
  appointmentData(literals(APPOINTMENT_ACTIONS.filter((action) => action !== "created"))),
);
export const PrescriptionCreated = envelope(
  "prescription",
  "prescription.created",
  prescriptionData(Type.Literal("created")),
);
export const PrescriptionUpdated = envelope(
  "prescription",
  "prescription.updated",
  prescriptionData(Type.Literal("updated")),
);

/** The `data` of an operational event about a webhook: what it is and the state it is now in. */
function webhookStateData<S extends TSchema>(state: S) {
  return Type.Object(
    {
      webhook_id: Type.String({ description: "The webhook the event is about (never sent to it)." }),
      endpoint: Type.String(),
      state,
      reason: Type.Union([Type.String(), Type.Null()], {
        description: "Why, in words: the last failure, or 410 Gone.",
      }),
      failing_since: Type.Union([unixSeconds(), Type.Null()], {
        description: "When the current run of failures began (Unix seconds); null once recovered.",
      }),
      changed_at: unixSeconds("When the state changed (Unix seconds)."),
    },
    { additionalProperties: false },
  );
}

export const WebhookDegraded = envelope("webhook", "webhook.degraded", webhookStateData(Type.Literal("degraded")));
export const WebhookDisabled = envelope("webhook", "webhook.disabled", webhookStateData(Type.Literal("disabled")));
export const WebhookRecovered = envelope("webhook", "webhook.recovered", webhookStateData(Type.Literal("active")));
export const DeliveryExhausted = envelope(
  "delivery",
  "delivery.exhausted",
  Type.Object(
    {
      delivery_id: Type.String({ description: "Read it, with every attempt, at GET …/webhook/deliveries/{id}." }),
      webhook_id: Type.String({ description: "The webhook it was for (never sent to it)." }),
      event_id: Type.String({ description: "The event it carried." }),
      event_name: Type.String(),
      attempts: Type.Integer({ minimum: 1 }),
      last_status_code: Type.Union([Type.Integer(), Type.Null()], { description: "null: no HTTP answer." }),
      last_error: Type.Union([Type.String(), Type.Null()]),
    },
    { additionalProperties: false },
  ),
);

export type AppointmentCreatedPayload = Static<typeof AppointmentCreated>;
export type AppointmentUpdatedPayload = Static<typeof AppointmentUpdated>;
export type PrescriptionCreatedPayload = Static<typeof PrescriptionCreated>;
export type PrescriptionUpdatedPayload = Static<typeof PrescriptionUpdated>;
export type WebhookDegradedPayload = Static<typeof WebhookDegraded>;
export type WebhookDisabledPayload = Static<typeof WebhookDisabled>;
export type WebhookRecoveredPayload = Static<typeof WebhookRecovered>;
export type DeliveryExhaustedPayload = Static<typeof DeliveryExhausted>;
export type EventPayload =
  | AppointmentCreatedPayload
  | AppointmentUpdatedPayload
  | PrescriptionCreatedPayload
  | PrescriptionUpdatedPayload
  | WebhookDegradedPayload
  | WebhookDisabledPayload
  | WebhookRecoveredPayload
  | DeliveryExhaustedPayload;

/** The origin fields of an operational event, which carehooks itself causes: no API client, no request. */
export const OPERATIONAL_CLIENT = "carehooks";

const ids = {
  event_id: "evt_01JD3Q8W6ZK4M2X9T7R5B1C0N8",
  transaction_id: "req_01JD3Q8W6Y0A9V8S7D6F5G4H3J",
  client_id: "cli_01JD3Q2B5N8M7K6J5H4G3F2E1D",
  business_id: "biz_01JD3Q1A2B3C4D5E6F7G8H9J0K",
};

export const EVENT_CATALOG = [
  {
    name: "appointment.created",
    description: "An appointment was booked (status BK).",
    schema: AppointmentCreated,
    example: {
      service: "appointment",
      event: "appointment.created",
      ...ids,
      event_time: 1730189000,
      timestamp: 1730189000,
      data: {
        appointment_id: "apt_01JD3Q8W6X1B2C3D4E5F6G7H8J",
        doctor_id: "doc-1042",
        patient_id: "pat-88213",
        clinic_id: "clinic-7",
        partner_appointment_id: "HIS-APT-5521",
        status: "BK",
        action: "created",
        created_at: 1730189000,
        modified_at: 1730189000,
      },
    } satisfies AppointmentCreatedPayload,
  },
  {
    name: "appointment.updated",
    description:
      "An appointment changed: data.action says how (modified, started, completed, cancelled, no_show) and data.status carries the new status code.",
    schema: AppointmentUpdated,
    example: {
      service: "appointment",
      event: "appointment.updated",
      ...ids,
      event_time: 1730189586,
      timestamp: 1730189586,
      data: {
        appointment_id: "apt_01JD3Q8W6X1B2C3D4E5F6G7H8J",
        doctor_id: "doc-1042",
        patient_id: "pat-88213",
        clinic_id: "clinic-7",
        partner_appointment_id: "HIS-APT-5521",
        status: "CM",
        action: "completed",
        created_at: 1730189000,
        modified_at: 1730189586,
      },
    } satisfies AppointmentUpdatedPayload,
  },
  {
    name: "prescription.created",
    description: "A prescription was written (version 1).",
    schema: PrescriptionCreated,
    example: {
      service: "prescription",
      event: "prescription.created",
      ...ids,
      event_time: 1730189600,
      timestamp: 1730189600,
      data: {
        prescription_id: "rx_01JD3QB2C3D4E5F6G7H8J9K0M1",
        appointment_id: "apt_01JD3Q8W6X1B2C3D4E5F6G7H8J",
        doctor_id: "doc-1042",
        patient_id: "pat-88213",
        clinic_id: "clinic-7",
        action: "created",
        current_version: 1,
        previous_version: null,
        created_at: 1730189600,
        modified_at: 1730189600,
      },
    } satisfies PrescriptionCreatedPayload,
  },
  {
    name: "prescription.updated",
    description: "A prescription was revised: a new version; earlier versions stay readable.",
    schema: PrescriptionUpdated,
    example: {
      service: "prescription",
      event: "prescription.updated",
      ...ids,
      event_time: 1730190000,
      timestamp: 1730190000,
      data: {
        prescription_id: "rx_01JD3QB2C3D4E5F6G7H8J9K0M1",
        appointment_id: "apt_01JD3Q8W6X1B2C3D4E5F6G7H8J",
        doctor_id: "doc-1042",
        patient_id: "pat-88213",
        clinic_id: "clinic-7",
        action: "updated",
        current_version: 2,
        previous_version: 1,
        created_at: 1730189600,
        modified_at: 1730190000,
      },
    } satisfies PrescriptionUpdatedPayload,
  },
  {
    name: "webhook.degraded",
    description:
      "Operational: a webhook failed CAREHOOKS_BREAKER_THRESHOLD times in a row and now gets one probe at a time until it answers. Sent to the business's other webhooks that ask for it, never to the one it is about; client_id is \"carehooks\" and transaction_id the event's own id.",
    schema: WebhookDegraded,
    example: {
      service: "webhook",
      event: "webhook.degraded",
      ...ids,
      client_id: "carehooks",
      transaction_id: ids.event_id,
      event_time: 1730190100,
      timestamp: 1730190100,
      data: {
        webhook_id: "wh_01JD3Q9A1B2C3D4E5F6G7H8J9K",
        endpoint: "https://partner.example/webhooks/carehooks",
        state: "degraded",
        reason: "HTTP 503",
        failing_since: 1730189900,
        changed_at: 1730190100,
      },
    } satisfies WebhookDegradedPayload,
  },
  {
    name: "webhook.disabled",
    description:
      "Operational: carehooks stopped delivering to a webhook: it kept failing for CAREHOOKS_DISABLE_AFTER, or answered 410 Gone. Its pending deliveries are cancelled; `POST …/subscriptions/{id}/enable` starts it again. Never sent to the webhook it is about.",
    schema: WebhookDisabled,
    example: {
      service: "webhook",
      event: "webhook.disabled",
      ...ids,
      client_id: "carehooks",
      transaction_id: ids.event_id,
      event_time: 1730276500,
      timestamp: 1730276500,
      data: {
        webhook_id: "wh_01JD3Q9A1B2C3D4E5F6G7H8J9K",
        endpoint: "https://partner.example/webhooks/carehooks",
        state: "disabled",
        reason: "the endpoint answered 410 Gone",
        failing_since: 1730189900,
        changed_at: 1730276500,
      },
    } satisfies WebhookDisabledPayload,
  },
  {
    name: "webhook.recovered",
    description:
      "Operational: a degraded webhook answered its probe with a 2xx and gets its full share of deliveries again. Never sent to the webhook it is about.",
    schema: WebhookRecovered,
    example: {
      service: "webhook",
      event: "webhook.recovered",
      ...ids,
      client_id: "carehooks",
      transaction_id: ids.event_id,
      event_time: 1730190700,
      timestamp: 1730190700,
      data: {
        webhook_id: "wh_01JD3Q9A1B2C3D4E5F6G7H8J9K",
        endpoint: "https://partner.example/webhooks/carehooks",
        state: "active",
        reason: null,
        failing_since: null,
        changed_at: 1730190700,
      },
    } satisfies WebhookRecoveredPayload,
  },
  {
    name: "delivery.exhausted",
    description:
      "Operational: a delivery used its whole retry schedule without a 2xx and is now failed (resend it with `POST …/deliveries/{id}/resend`). Never sent to the webhook it was for, and never raised for a delivery of a delivery.exhausted event.",
    schema: DeliveryExhausted,
    example: {
      service: "delivery",
      event: "delivery.exhausted",
      ...ids,
      client_id: "carehooks",
      transaction_id: ids.event_id,
      event_time: 1730450000,
      timestamp: 1730450000,
      data: {
        delivery_id: "dlv_01JD3QC4D5E6F7G8H9J0K1M2N3",
        webhook_id: "wh_01JD3Q9A1B2C3D4E5F6G7H8J9K",
        event_id: "evt_01JD3Q8W6ZK4M2X9T7R5B1C0N8",
        event_name: "appointment.created",
        attempts: 10,
        last_status_code: 500,
        last_error: "HTTP 500; gave up after 10 attempts",
      },
    } satisfies DeliveryExhaustedPayload,
  },
] as const;

export const EVENT_NAMES = EVENT_CATALOG.map((entry) => entry.name);
export type EventName = (typeof EVENT_CATALOG)[number]["name"];

export function isEventName(value: string): value is EventName {
  return (EVENT_NAMES as readonly string[]).includes(value);
}

/** The payload fields a webhook's filter may name: every scalar field of every catalogued event. */
export const FILTER_FIELDS = filterFieldsOf(EVENT_CATALOG.map((entry) => entry.schema));
