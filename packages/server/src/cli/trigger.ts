/**
 * `carehooks trigger <event>`: makes a real change through the API that
 * causes that event, so a receiver gets a real event whose details it can
 * fetch (unlike `webhooks test`, whose ids are examples). Every record it
 * makes is a sample marked as such in its notes or names.
 */
import { Command } from "commander";
import { apiFor, type IntegratorOptions, withProfile } from "./integrator.js";
import { printRecord } from "./output.js";

const APPOINTMENTS = "/dr/v1/business/appointments";
const PRESCRIPTIONS = "/dr/v1/business/prescription";

/** A booking an hour from now, for half an hour. */
function sampleBooking(): Record<string, unknown> {
  const start = new Date(Date.now() + 3_600_000);
  start.setUTCSeconds(0, 0);
  return {
    doctor_id: "doc-sample",
    patient_id: "pat-sample",
    clinic_id: "cln-sample",
    start_time: start.toISOString(),
    end_time: new Date(start.getTime() + 1_800_000).toISOString(),
    notes: "sample appointment made by carehooks trigger",
  };
}

const SAMPLE_PRESCRIPTION = {
  doctor_id: "doc-sample",
  patient_id: "pat-sample",
  clinic_id: "cln-sample",
  doctor_name: "Dr. Sample (carehooks trigger)",
  patient_name: "Sample Patient",
  prescription_details: [
    { resource_type: "medicationrequest", drug_name: "Paracetamol 500mg", dose: "1 tablet", frequency: "TID" },
  ],
};

type Api = ReturnType<typeof apiFor>;
/** What each event needs done; returns the records made, by kind. */
const TRIGGERS: Record<string, (api: Api) => Promise<Record<string, string>>> = {
  "appointment.created": async (api) => {
    const booked = await api.request<{ appointment_id: string }>("POST", APPOINTMENTS, sampleBooking());
    return { appointment_id: booked.appointment_id };
  },
  "appointment.updated": async (api) => {
    const booked = await api.request<{ appointment_id: string }>("POST", APPOINTMENTS, sampleBooking());
    // Completed with a payment: an appointment.updated with action "completed" (after the appointment.created).
    await api.request("POST", `${APPOINTMENTS}/${booked.appointment_id}/complete`, {
      payment: { payment_status: "paid", amount: 500 },
    });
    return { appointment_id: booked.appointment_id };
  },
  "prescription.created": async (api) => {
    const made = await api.request<{ prescription_id: string }>("POST", PRESCRIPTIONS, SAMPLE_PRESCRIPTION);
    return { prescription_id: made.prescription_id };
  },
  "prescription.updated": async (api) => {
    const made = await api.request<{ prescription_id: string }>("POST", PRESCRIPTIONS, SAMPLE_PRESCRIPTION);
    await api.request("PATCH", `${PRESCRIPTIONS}/${made.prescription_id}`, {
      prescription_details: [...SAMPLE_PRESCRIPTION.prescription_details, { resource_type: "notes", text: "revised" }],
    });
    return { prescription_id: made.prescription_id };
  },
};

export function triggerCommand(): Command {
  return withProfile(
    new Command("trigger")
      .description(
        `Make a real sample change through the API that causes an event (${Object.keys(TRIGGERS).join(", ")}); an *.updated creates the record first, so its *.created comes too`,
      )
      .argument("<event>", "the event to cause"),
  ).action(async (event: string, options: IntegratorOptions) => {
    const trigger = TRIGGERS[event];
    if (!trigger) throw new Error(`cannot trigger "${event}": choose one of ${Object.keys(TRIGGERS).join(", ")}`);
    const made = await trigger(apiFor(options));
    const [[kind, id]] = Object.entries(made) as [[string, string]];
    printRecord(options, { event, ...made }, `triggered ${event}: ${kind.replace("_id", "")} ${id}`);
  });
}
