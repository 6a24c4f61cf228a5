/**
 * Builds the payload text of an event. The text is built once, stored, and
 * sent byte-identical on every attempt; key order is fixed here.
 */
import {
  type AppointmentAction,
  type AppointmentStatus,
  type DeliveryExhaustedPayload,
  type EventName,
  type EventPayload,
  OPERATIONAL_CLIENT,
  type PrescriptionAction,
} from "./event-catalog.js";

export interface EventOrigin {
  readonly eventId: string;
  /** When the change happened (ms); becomes both event_time and timestamp. */
  readonly at: number;
  readonly transactionId: string;
  readonly clientId: string;
  readonly businessId: string;
}

const seconds = (ms: number) => Math.floor(ms / 1000);

function envelope(service: EventPayload["service"], event: EventName, origin: EventOrigin, data: object) {
  return {
    service,
    event,
    event_id: origin.eventId,
    event_time: seconds(origin.at),
    timestamp: seconds(origin.at),
    transaction_id: origin.transactionId,
    client_id: origin.clientId,
    business_id: origin.businessId,
    data,
  } as EventPayload;
}

export interface AppointmentFacts {
  readonly id: string;
  readonly doctor_id: string;
  readonly patient_id: string;
  readonly clinic_id: string;
  readonly partner_appointment_id: string | null;
  readonly status: AppointmentStatus;
  readonly created_at: number;
  readonly updated_at: number;
}

export function appointmentEvent(
  origin: EventOrigin,
  appointment: AppointmentFacts,
  action: AppointmentAction,
): string {
  const name = action === "created" ? "appointment.created" : "appointment.updated";
  return JSON.stringify(
    envelope("appointment", name, origin, {
      appointment_id: appointment.id,
      doctor_id: appointment.doctor_id,
      patient_id: appointment.patient_id,
      clinic_id: appointment.clinic_id,
      partner_appointment_id: appointment.partner_appointment_id,
      status: appointment.status,
      action,
      created_at: seconds(appointment.created_at),
      modified_at: seconds(appointment.updated_at),
    }),
  );
}

export interface PrescriptionFacts {
  readonly id: string;
  readonly appointment_id: string | null;
  readonly doctor_id: string;
  readonly patient_id: string;
  readonly clinic_id: string;
  readonly current_version: number;
  readonly created_at: number;
  readonly updated_at: number;
}

export function prescriptionEvent(
  origin: EventOrigin,
  prescription: PrescriptionFacts,
  action: PrescriptionAction,
): string {
  return JSON.stringify(
    envelope("prescription", action === "created" ? "prescription.created" : "prescription.updated", origin, {
      prescription_id: prescription.id,
      appointment_id: prescription.appointment_id,
      doctor_id: prescription.doctor_id,
      patient_id: prescription.patient_id,
      clinic_id: prescription.clinic_id,
      action,
      current_version: prescription.current_version,
      previous_version: prescription.current_version > 1 ? prescription.current_version - 1 : null,
      created_at: seconds(prescription.created_at),
      modified_at: seconds(prescription.updated_at),
    }),
  );
}

/** What an operational event about a webhook says of it (times in ms). */
export interface WebhookStateFacts {
  readonly webhookId: string;
  readonly endpoint: string;
  readonly state: "active" | "degraded" | "disabled";
  readonly reason: string | null;
  readonly failingSince: number | null;
  readonly changedAt: number;
}

/** The origin of an event carehooks itself causes: its own id stands for the request, carehooks for the client. */
export function operationalOrigin(eventId: string, at: number, businessId: string): EventOrigin {
  return { eventId, at, transactionId: eventId, clientId: OPERATIONAL_CLIENT, businessId };
}

const WEBHOOK_EVENTS = {
  active: "webhook.recovered",
  degraded: "webhook.degraded",
  disabled: "webhook.disabled",
} as const;

/** `webhook.degraded`, `webhook.disabled` or `webhook.recovered`: the event of a change to `state`. */
export function webhookEventName(state: WebhookStateFacts["state"]): EventName {
  return WEBHOOK_EVENTS[state];
}

/** The payload of the event a webhook's change of state raises (`webhookEventName`). */
export function webhookStateEvent(origin: EventOrigin, facts: WebhookStateFacts): string {
  const name = webhookEventName(facts.state);
  const data = {
    webhook_id: facts.webhookId,
    endpoint: facts.endpoint,
    state: facts.state,
    reason: facts.reason,
    failing_since: facts.failingSince === null ? null : seconds(facts.failingSince),
    changed_at: seconds(facts.changedAt),
  };
  return JSON.stringify(envelope("webhook", name, origin, data));
}

export interface ExhaustedFacts {
  readonly deliveryId: string;
  readonly webhookId: string;
  readonly eventId: string;
  readonly eventName: string;
  readonly attempts: number;
  readonly lastStatusCode: number | null;
  readonly lastError: string | null;
}

export function deliveryExhaustedEvent(origin: EventOrigin, facts: ExhaustedFacts): string {
  const data: DeliveryExhaustedPayload["data"] = {
    delivery_id: facts.deliveryId,
    webhook_id: facts.webhookId,
    event_id: facts.eventId,
    event_name: facts.eventName,
    attempts: facts.attempts,
    last_status_code: facts.lastStatusCode,
    last_error: facts.lastError,
  };
  return JSON.stringify(envelope("delivery", "delivery.exhausted", origin, data));
}
