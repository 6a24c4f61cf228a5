/** Prescriptions: create (optionally linked to an appointment), revise as new versions, read any version. */
import { type Static, Type } from "@sinclair/typebox";
import { checkPrescriptionDetails, PRESCRIPTION_ITEM_TYPES } from "../domain/clinic-input.js";
import { conflict, invalidRequest, notFound } from "../domain/errors.js";
import { prescriptionEvent } from "../domain/event-payloads.js";
import { newId } from "../domain/ids.js";
import { isoTime } from "../domain/time.js";
import { findAppointment, updateAppointment } from "../store/appointments.js";
import {
  addPrescriptionVersion,
  findPrescription,
  findPrescriptionVersion,
  type PrescriptionRow,
  type PrescriptionVersionRow,
} from "../store/prescriptions.js";
import { auditRead } from "./audit.js";
import { type App, type AppContext, type Principal, principalOf } from "./context.js";
import { errorResponses, IdParams } from "./schemas.js";
import { type Change, type PlannedCreate, recordChange, runIngest, runWrite } from "./writes.js";

const BASE = "/dr/v1/business/prescription";

const Id = Type.String({ minLength: 1, maxLength: 128 });
const Name = Type.Union([Type.String({ maxLength: 200 }), Type.Null()]);
const DetailItem = Type.Object(
  { resource_type: Type.String({ enum: PRESCRIPTION_ITEM_TYPES, description: PRESCRIPTION_ITEM_TYPES.join(" | ") }) },
  {
    title: "PrescriptionItem",
    additionalProperties: Type.Union([Type.String({ maxLength: 2000 }), Type.Number(), Type.Boolean(), Type.Null()]),
    description:
      "medicationrequest {drug_name, dose, frequency, duration, route, timing, instructions, drug_id}; condition {name, code, status, since, notes}; advices {text}; vitals {name, value, unit, recorded_at}; follow_up {date, days, notes}; notes {text}",
  },
);
const Details = Type.Array(DetailItem, { maxItems: 200 });

const CreateBody = Type.Object(
  {
    appointment_id: Type.Optional(Type.Union([Id, Type.Null()])),
    doctor_id: Type.Optional(Id),
    patient_id: Type.Optional(Id),
    clinic_id: Type.Optional(Id),
    doctor_name: Type.Optional(Name),
    patient_name: Type.Optional(Name),
    prescription_details: Details,
  },
  { title: "NewPrescription", additionalProperties: false },
);

const UpdateBody = Type.Object(
  { doctor_name: Type.Optional(Name), patient_name: Type.Optional(Name), prescription_details: Details },
  { additionalProperties: false },
);

export const Prescription = Type.Object(
  {
    prescription_id: Type.String(),
    appointment_id: Type.Union([Type.String(), Type.Null()]),
    doctor_id: Type.String(),
    patient_id: Type.String(),
    clinic_id: Type.String(),
    doctor_name: Type.Union([Type.String(), Type.Null()]),
    patient_name: Type.Union([Type.String(), Type.Null()]),
    version: Type.Integer(),
    current_version: Type.Integer(),
    prescription_details: Details,
    created_at: Type.String({ format: "date-time" }),
    updated_at: Type.String({ format: "date-time", description: "When this version was written." }),
  },
  { title: "Prescription" },
);
type Prescription = Static<typeof Prescription>;

export function presentPrescription(row: PrescriptionRow, version: PrescriptionVersionRow): Prescription {
  return {
    prescription_id: row.id,
    appointment_id: row.appointment_id,
    doctor_id: row.doctor_id,
    patient_id: row.patient_id,
    clinic_id: row.clinic_id,
    doctor_name: version.doctor_name,
    patient_name: version.patient_name,
    version: version.version,
    current_version: row.current_version,
    prescription_details: JSON.parse(version.details) as Prescription["prescription_details"],
    created_at: isoTime(row.created_at),
    updated_at: isoTime(version.created_at),
  };
}

/** The prescription's event; with `records`, the rows to write with it (a create). */
function prescriptionChange(row: PrescriptionRow, action: "created" | "updated", records?: Change["records"]): Change {
  return {
    name: `prescription.${action}`,
    resourceType: "prescription",
    resourceId: row.id,
    payload: (origin) => prescriptionEvent(origin, row, action),
    ...(records ? { records } : {}),
  };
}

export function prescriptionRoutes(app: App, ctx: AppContext): void {
  const tags = ["prescriptions"];
  const write = { scope: "prescriptions:write" as const, idempotent: true as const };
  const read = { scope: "prescriptions:read" as const, audit: "prescription" as const };

  app.post(
    BASE,
    {
      config: write,
      schema: {
        tags,
        summary: "Write a prescription (version 1); emits prescription.created",
        description:
          "With appointment_id, the doctor, patient and clinic come from the appointment (any given must match) and the appointment's prescription_id is set.",
        body: CreateBody,
        response: { 201: Prescription, ...errorResponses(400, 401, 403, 409, 413, 415) },
      },
    },
    async (request, reply) => {
      const principal = principalOf(request);
      const body = request.body;
      checkPrescriptionDetails(body.prescription_details as never);
      type Parties = { doctor_id?: string; patient_id?: string; clinic_id?: string };
      /** The prescription and its first version, written with their event. */
      const plan = (id: string, parties: Parties, now: number): PlannedCreate => {
        const missing = (["doctor_id", "patient_id", "clinic_id"] as const).filter(
          (field) => parties[field] === undefined,
        );
        if (missing.length > 0) throw invalidRequest(`body is missing "${missing[0]}" (or give appointment_id)`);
        const row: PrescriptionRow = {
          id,
          business_id: principal.businessId,
          appointment_id: body.appointment_id ?? null,
          doctor_id: parties.doctor_id as string,
          patient_id: parties.patient_id as string,
          clinic_id: parties.clinic_id as string,
          current_version: 1,
          created_by: principal.clientId,
          updated_by: principal.clientId,
          created_at: now,
          updated_at: now,
        };
        const version: PrescriptionVersionRow = {
          prescription_id: id,
          version: 1,
          doctor_name: body.doctor_name ?? null,
          patient_name: body.patient_name ?? null,
          details: JSON.stringify(body.prescription_details),
          created_by: principal.clientId,
          created_at: now,
        };
        return {
          status: 201,
          body: presentPrescription(row, version),
          change: prescriptionChange(row, "created", [
            { table: "prescription", row },
            { table: "prescription_version", row: version },
          ]),
        };
      };
      const appointmentId = body.appointment_id;
      // Nothing to read first: the common case, written with the other creates of the turn (runIngest).
      if (!appointmentId) return runIngest(ctx, request, reply, (now) => plan(newId("prescription", now), body, now));
      return runWrite(ctx, request, reply, async (trx, now) => {
        const id = newId("prescription", now);
        const appointment = await findAppointment(trx, principal.businessId, appointmentId, ctx.adapter.lockRows);
        if (!appointment) throw invalidRequest("appointment_id names no appointment of this business");
        for (const field of ["doctor_id", "patient_id", "clinic_id"] as const) {
          if (body[field] !== undefined && body[field] !== appointment[field]) {
            throw invalidRequest(`${field} differs from the appointment's`);
          }
        }
        if (appointment.prescription_id !== null) {
          throw conflict(`the appointment already has prescription ${appointment.prescription_id}`);
        }
        await updateAppointment(trx, principal.businessId, appointment.id, {
          prescription_id: id,
          updated_at: now,
          updated_by: principal.clientId,
        });
        const planned = plan(id, appointment, now);
        const change = await recordChange(ctx, trx, request, principal, planned.change, now);
        return { status: planned.status, body: planned.body, ...change };
      });
    },
  );

  app.patch(
    `${BASE}/:id`,
    {
      config: write,
      schema: {
        tags,
        summary: "Revise a prescription: a new version; earlier ones stay readable; emits prescription.updated",
        params: IdParams,
        body: UpdateBody,
        response: { 200: Prescription, ...errorResponses(400, 401, 403, 404, 409, 413, 415) },
      },
    },
    async (request, reply) => {
      const principal = principalOf(request);
      const body = request.body;
      checkPrescriptionDetails(body.prescription_details as never);
      return runWrite(ctx, request, reply, async (trx, now) => {
        const row = await findPrescription(trx, principal.businessId, request.params.id, ctx.adapter.lockRows);
        if (!row) throw notFound("prescription");
        const previous = await findPrescriptionVersion(trx, row.id, row.current_version);
        const version: PrescriptionVersionRow = {
          prescription_id: row.id,
          version: row.current_version + 1,
          doctor_name: body.doctor_name !== undefined ? body.doctor_name : (previous?.doctor_name ?? null),
          patient_name: body.patient_name !== undefined ? body.patient_name : (previous?.patient_name ?? null),
          details: JSON.stringify(body.prescription_details),
          created_by: principal.clientId,
          created_at: now,
        };
        if (!(await addPrescriptionVersion(trx, row, version))) {
          throw conflict("the prescription was revised concurrently; read it and try again");
        }
        const updated = { ...row, current_version: version.version, updated_at: now, updated_by: principal.clientId };
        const change = await recordChange(ctx, trx, request, principal, prescriptionChange(updated, "updated"), now);
        return { status: 200, body: presentPrescription(updated, version), ...change };
      });
    },
  );

  async function readVersion(
    request: Parameters<typeof auditRead>[1],
    principal: Principal,
    id: string,
    versionNumber: number | undefined,
  ): Promise<Prescription> {
    const row = await findPrescription(ctx.db, principal.businessId, id);
    const version = row && (await findPrescriptionVersion(ctx.db, row.id, versionNumber ?? row.current_version));
    await auditRead(ctx, request, principal, {
      resourceType: "prescription",
      resourceId: id,
      outcome: row && version ? "allowed" : "not_found",
    });
    if (!row || !version) throw notFound(row ? "prescription version" : "prescription");
    return presentPrescription(row, version);
  }

  for (const path of [`${BASE}/:id`, "/dr/v1/prescription/:id"]) {
    app.get(
      path,
      {
        config: read,
        schema: {
          tags,
          summary: "Get a prescription's current version; every read is written to the access log",
          params: IdParams,
          response: { 200: Prescription, ...errorResponses(401, 403, 404) },
        },
      },
      async (request) => readVersion(request, principalOf(request), request.params.id, undefined),
    );
  }

  app.get(
    `${BASE}/:id/versions/:n`,
    {
      config: read,
      schema: {
        tags,
        summary: "Get one version of a prescription",
        params: Type.Object({
          id: Type.String({ maxLength: 64 }),
          n: Type.Integer({ minimum: 1, maximum: 1_000_000 }),
        }),
        response: { 200: Prescription, ...errorResponses(400, 401, 403, 404) },
      },
    },
    async (request) => readVersion(request, principalOf(request), request.params.id, request.params.n),
  );
}
