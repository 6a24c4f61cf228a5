import { Ajv } from "ajv";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EVENT_CATALOG } from "../src/domain/event-catalog.js";
import { dialects } from "./support/databases.js";
import { type Harness, startHarness, type Tenant } from "./support/harness.js";

const RX = "/dr/v1/business/prescription";
const ajv = new Ajv({ strict: false });
const validate = (name: string, payload: unknown) =>
  ajv.compile(JSON.parse(JSON.stringify(EVENT_CATALOG.find((e) => e.name === name)?.schema)))(payload);

const details = [
  {
    resource_type: "medicationrequest",
    drug_name: "Amoxicillin 500mg",
    dose: "1 tablet",
    frequency: "TID",
    duration: "5 days",
  },
  { resource_type: "condition", name: "Acute sinusitis" },
  { resource_type: "advices", text: "Steam inhalation twice daily" },
  { resource_type: "vitals", name: "temperature", value: 38.2, unit: "C" },
  { resource_type: "follow_up", days: 7 },
  { resource_type: "notes", text: "Allergic to penicillin? checked: no" },
];

describe.each(dialects())("prescriptions on %s", (dialect) => {
  let h: Harness;
  let clinic: Tenant;

  beforeAll(async () => {
    h = await startHarness(dialect);
    clinic = await h.tenant();
    await clinic.request("POST", "/notification/v1/connect/webhook/subscriptions", {
      endpoint: "https://rx.example.com/",
      event_names: ["prescription.created", "prescription.updated"],
    });
  });
  afterAll(async () => h?.close());

  async function payloads(id: string) {
    const rows = await h.ctx.db
      .selectFrom("event")
      .select("payload")
      .where("resource_id", "=", id)
      .orderBy("id")
      .execute();
    return rows.map((row) => row.payload);
  }

  it("writes a standalone prescription, revises it, and keeps every version readable", async () => {
    const created = await clinic.request("POST", RX, {
      doctor_id: "doc-1",
      patient_id: "pat-1",
      clinic_id: "clinic-1",
      doctor_name: "Dr. Rao",
      patient_name: "Asha K",
      prescription_details: details,
    });
    expect(created.statusCode, created.body).toBe(201);
    const rx = created.json();
    expect(rx).toMatchObject({
      version: 1,
      current_version: 1,
      appointment_id: null,
      doctor_name: "Dr. Rao",
      prescription_details: details,
    });

    const revised = await clinic.request("PATCH", `${RX}/${rx.prescription_id}`, {
      prescription_details: [details[0], { resource_type: "notes", text: "Reduced dose" }],
    });
    expect(revised.statusCode, revised.body).toBe(200);
    expect(revised.json()).toMatchObject({ version: 2, current_version: 2, doctor_name: "Dr. Rao" });

    const current = await clinic.request("GET", `/dr/v1/prescription/${rx.prescription_id}`);
    expect(current.json().prescription_details).toHaveLength(2);
    const first = await clinic.request("GET", `${RX}/${rx.prescription_id}/versions/1`);
    expect(first.json()).toMatchObject({ version: 1, current_version: 2, prescription_details: details });
    expect((await clinic.request("GET", `${RX}/${rx.prescription_id}/versions/3`)).statusCode).toBe(404);
    expect((await clinic.request("GET", `${RX}/${rx.prescription_id}/versions/zero`)).statusCode).toBe(400);

    const [createdEvent, updatedEvent] = (await payloads(rx.prescription_id)).map((text) => JSON.parse(text));
    expect(createdEvent.data).toMatchObject({ action: "created", current_version: 1, previous_version: null });
    expect(updatedEvent.data).toMatchObject({ action: "updated", current_version: 2, previous_version: 1 });
    expect(validate("prescription.created", createdEvent)).toBe(true);
    expect(validate("prescription.updated", updatedEvent)).toBe(true);
    for (const text of await payloads(rx.prescription_id)) {
      for (const clinical of ["Amoxicillin", "sinusitis", "Rao", "Asha", "penicillin", "Reduced"])
        expect(text).not.toContain(clinical);
    }
  });

  it("links to an appointment: parties come from it and it gets the prescription_id", async () => {
    const appointment = (
      await clinic.request("POST", "/dr/v1/business/appointments", {
        doctor_id: "doc-9",
        patient_id: "pat-9",
        clinic_id: "clinic-9",
        start_time: "2026-12-01T09:00:00Z",
        end_time: "2026-12-01T09:30:00Z",
      })
    ).json();
    const created = await clinic.request("POST", RX, {
      appointment_id: appointment.appointment_id,
      prescription_details: details,
    });
    expect(created.statusCode, created.body).toBe(201);
    expect(created.json()).toMatchObject({ doctor_id: "doc-9", patient_id: "pat-9", clinic_id: "clinic-9" });
    const linked = await clinic.request("GET", `/dr/v1/business/appointments/${appointment.appointment_id}`);
    expect(linked.json().prescription_id).toBe(created.json().prescription_id);

    const second = await clinic.request("POST", RX, {
      appointment_id: appointment.appointment_id,
      prescription_details: details,
    });
    expect(second.statusCode).toBe(409);
    const mismatch = await clinic.request("POST", RX, {
      appointment_id: appointment.appointment_id,
      doctor_id: "doc-other",
      prescription_details: details,
    });
    expect(mismatch.statusCode).toBe(400);
    const stranger = await h.tenant();
    const foreign = await stranger.request("POST", RX, {
      appointment_id: appointment.appointment_id,
      prescription_details: details,
    });
    expect(foreign.statusCode).toBe(400);
  });

  it.each([
    [{ prescription_details: details }, /doctor_id/],
    [
      { doctor_id: "d", patient_id: "p", clinic_id: "c", prescription_details: [{ resource_type: "xray" }] },
      /resource_type/,
    ],
    [
      {
        doctor_id: "d",
        patient_id: "p",
        clinic_id: "c",
        prescription_details: [{ resource_type: "medicationrequest" }],
      },
      /drug_name/,
    ],
    [
      {
        doctor_id: "d",
        patient_id: "p",
        clinic_id: "c",
        prescription_details: [{ resource_type: "advices", text: "x", colour: "red" }],
      },
      /unknown field "colour"/,
    ],
    [{ doctor_id: "d", patient_id: "p", clinic_id: "c" }, /prescription_details/],
  ])("refuses a bad prescription %#", async (body, message) => {
    const response = await clinic.request("POST", RX, body);
    expect(response.statusCode).toBe(400);
    expect(response.json().error.message).toMatch(message);
  });

  it("hides other businesses' prescriptions and needs the prescription scopes", async () => {
    const rx = (
      await clinic.request("POST", RX, {
        doctor_id: "d",
        patient_id: "p",
        clinic_id: "c",
        prescription_details: details,
      })
    ).json();
    const stranger = await h.tenant();
    expect((await stranger.request("GET", `${RX}/${rx.prescription_id}`)).statusCode).toBe(404);
    expect(
      (await stranger.request("PATCH", `${RX}/${rx.prescription_id}`, { prescription_details: details })).statusCode,
    ).toBe(404);
    const noScope = await clinic.colleague(["appointments:read"]);
    expect((await noScope.request("GET", `${RX}/${rx.prescription_id}`)).statusCode).toBe(403);
    expect((await noScope.request("POST", RX, { prescription_details: details })).statusCode).toBe(403);
  });
});
