/**
 * Builds the payload text of an event. The text is built once, stored, and
 * sent byte-identical on every attempt; key order is fixed here.
 */
import type {
  AppointmentAction,
  AppointmentStatus,
  EventName,
  EventPayload,
  PrescriptionAction,
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

function envelope(service: "appointment" | "prescription", event: EventName, origin: EventOrigin, data: object) {
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
