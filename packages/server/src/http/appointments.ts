/** Appointments: create, read, list, modify, and the state transitions, each emitting its event. */
import { type Static, Type } from "@sinclair/typebox";
import { type AppointmentCall, mustTransition } from "../domain/appointment-states.js";
import { checkTimeRange, timeInput } from "../domain/clinic-input.js";
import { invalidRequest, notFound } from "../domain/errors.js";
import { APPOINTMENT_STATUSES, type AppointmentStatus } from "../domain/event-catalog.js";
import { appointmentEvent } from "../domain/event-payloads.js";
import { newId } from "../domain/ids.js";
import { isoTime, parseTimeFilter } from "../domain/time.js";
import { type AppointmentRow, findAppointment, listAppointments, updateAppointment } from "../store/appointments.js";
import type { DialectAdapter } from "../store/dialect/adapter.js";
import type { Db } from "../store/open.js";
import { auditRead } from "./audit.js";
import { type App, type AppContext, principalOf } from "./context.js";
import { decodeCursor, toPage } from "./pagination.js";
import { EmptyBody, errorResponses, IdParams, ListPage, ListQuery } from "./schemas.js";
import { type Change, recordChange, runIngest, runWrite } from "./writes.js";

const BASE = "/dr/v1/business/appointments";

const Id = Type.String({ minLength: 1, maxLength: 128 });
const OptionalId = Type.Optional(Type.Union([Id, Type.Null()]));
const Time = Type.Union([
  Type.Integer({ description: "Unix seconds" }),
  Type.String({ maxLength: 40, description: "ISO-8601" }),
]);
const Mode = Type.Union([Type.Literal("in_clinic"), Type.Literal("tele")]);
const FreeObject = Type.Record(Type.String({ maxLength: 128 }), Type.Unknown());
const Payment = Type.Object(
  {
    payment_id: Type.Optional(Type.Union([Type.String({ maxLength: 128 }), Type.Null()])),
    payment_status: Type.Union([Type.Literal("paid"), Type.Literal("unpaid"), Type.Literal("partially_paid")]),
    amount: Type.Optional(Type.Union([Type.Number({ minimum: 0 }), Type.Null()])),
  },
  { title: "Payment", additionalProperties: false },
);
type Payment = Static<typeof Payment>;

const changeableFields = {
  start_time: Type.Optional(Time),
  end_time: Type.Optional(Time),
  mode: Type.Optional(Mode),
  channel: Type.Optional(Type.Union([Type.String({ maxLength: 64 }), Type.Null()])),
  notes: Type.Optional(Type.Union([Type.String({ maxLength: 10_000 }), Type.Null()])),
  custom_attributes: Type.Optional(Type.Union([FreeObject, Type.Null()])),
  partner_meta: Type.Optional(Type.Union([FreeObject, Type.Null()])),
  payment: Type.Optional(Type.Union([Payment, Type.Null()])),
};

const CreateBody = Type.Object(
  {
    doctor_id: Id,
    patient_id: Id,
    clinic_id: Id,
    partner_appointment_id: OptionalId,
    partner_doctor_id: OptionalId,
    partner_patient_id: OptionalId,
    partner_clinic_id: OptionalId,
    ...changeableFields,
    start_time: Time,
    end_time: Time,
  },
  { title: "NewAppointment", additionalProperties: false },
);

const ModifyBody = Type.Object(changeableFields, { additionalProperties: false });
const CompleteBody = Type.Object({ payment: Type.Optional(Payment) }, { additionalProperties: false });
const CancelBody = Type.Object(
  { cancelled_by: Type.Union([Type.Literal("patient"), Type.Literal("doctor"), Type.Literal("staff")]) },
  { additionalProperties: false },
);

export const Appointment = Type.Object(
  {
    appointment_id: Type.String(),
    doctor_id: Type.String(),
    patient_id: Type.String(),
    clinic_id: Type.String(),
    partner_appointment_id: Type.Union([Type.String(), Type.Null()]),
    partner_doctor_id: Type.Union([Type.String(), Type.Null()]),
    partner_patient_id: Type.Union([Type.String(), Type.Null()]),
    partner_clinic_id: Type.Union([Type.String(), Type.Null()]),
    status: Type.Union(APPOINTMENT_STATUSES.map((status) => Type.Literal(status))),
    mode: Mode,
    channel: Type.Union([Type.String(), Type.Null()]),
    start_time: Type.String({ format: "date-time" }),
    end_time: Type.String({ format: "date-time" }),
    payment: Type.Union([Payment, Type.Null()]),
    prescription_id: Type.Union([Type.String(), Type.Null()]),
    notes: Type.Union([Type.String(), Type.Null()]),
    custom_attributes: Type.Union([FreeObject, Type.Null()]),
    partner_meta: Type.Union([FreeObject, Type.Null()]),
    cancelled_by: Type.Union([Type.String(), Type.Null()]),
    created_at: Type.String({ format: "date-time" }),
    updated_at: Type.String({ format: "date-time" }),
  },
  { title: "Appointment" },
);
type Appointment = Static<typeof Appointment>;

const json = (value: unknown) => (value === undefined || value === null ? null : JSON.stringify(value));
const parsed = <T>(text: string | null): T | null => (text === null ? null : (JSON.parse(text) as T));

export function presentAppointment(row: AppointmentRow): Appointment {
  return {
    appointment_id: row.id,
    doctor_id: row.doctor_id,
    patient_id: row.patient_id,
    clinic_id: row.clinic_id,
    partner_appointment_id: row.partner_appointment_id,
    partner_doctor_id: row.partner_doctor_id,
    partner_patient_id: row.partner_patient_id,
    partner_clinic_id: row.partner_clinic_id,
    status: row.status as AppointmentStatus,
    mode: row.mode as "in_clinic" | "tele",
    channel: row.channel,
    start_time: isoTime(row.start_time),
    end_time: isoTime(row.end_time),
    payment: parsed<Payment>(row.payment),
    prescription_id: row.prescription_id,
    notes: row.notes,
    custom_attributes: parsed<Record<string, unknown>>(row.custom_attributes),
    partner_meta: parsed<Record<string, unknown>>(row.partner_meta),
    cancelled_by: row.cancelled_by,
    created_at: isoTime(row.created_at),
    updated_at: isoTime(row.updated_at),
  };
}

/** The appointment's event; with `records`, the rows to write with it (a create). */
function appointmentChange(
  row: AppointmentRow,
  action: Parameters<typeof appointmentEvent>[2],
  records?: Change["records"],
): Change {
  return {
    name: action === "created" ? "appointment.created" : "appointment.updated",
    resourceType: "appointment",
    resourceId: row.id,
    payload: (origin) => appointmentEvent(origin, { ...row, status: row.status as AppointmentStatus }, action),
    ...(records ? { records } : {}),
  };
}

/** The appointment a write is about, locked until the write commits (two transitions cannot both win). */
async function mustFind(
  db: Db,
  businessId: string,
  id: string,
  lock: DialectAdapter["lockRows"],
): Promise<AppointmentRow> {
  const row = await findAppointment(db, businessId, id, lock);
  if (!row) throw notFound("appointment");
  return row;
}

export function appointmentRoutes(app: App, ctx: AppContext): void {
  const tags = ["appointments"];
  const write = { scope: "appointments:write" as const, idempotent: true as const };
  const read = { scope: "appointments:read" as const, audit: "appointment" as const };

  app.post(
    BASE,
    {
      config: write,
      schema: {
        tags,
        summary: "Book an appointment (status BK); emits appointment.created",
        body: CreateBody,
        response: { 201: Appointment, ...errorResponses(400, 401, 403, 409, 413, 415) },
      },
    },
    async (request, reply) => {
      const principal = principalOf(request);
      const body = request.body;
      const start = timeInput("start_time", body.start_time);
      const end = timeInput("end_time", body.end_time);
      checkTimeRange(start, end);
      return runIngest(ctx, request, reply, (now) => {
        const row: AppointmentRow = {
          id: newId("appointment", now),
          business_id: principal.businessId,
          doctor_id: body.doctor_id,
          patient_id: body.patient_id,
          clinic_id: body.clinic_id,
          partner_appointment_id: body.partner_appointment_id ?? null,
          partner_doctor_id: body.partner_doctor_id ?? null,
          partner_patient_id: body.partner_patient_id ?? null,
          partner_clinic_id: body.partner_clinic_id ?? null,
          status: "BK",
          mode: body.mode ?? "in_clinic",
          channel: body.channel ?? null,
          start_time: start,
          end_time: end,
          payment: json(body.payment),
          prescription_id: null,
          notes: body.notes ?? null,
          custom_attributes: json(body.custom_attributes),
          partner_meta: json(body.partner_meta),
          cancelled_by: null,
          created_by: principal.clientId,
          updated_by: principal.clientId,
          created_at: now,
          updated_at: now,
        };
        return {
          status: 201,
          body: presentAppointment(row),
          change: appointmentChange(row, "created", [{ table: "appointment", row }]),
        };
      });
    },
  );

  const ListAppointmentsQuery = Type.Composite(
    [
      ListQuery,
      Type.Object({
        clinic_id: Type.Optional(Id),
        doctor_id: Type.Optional(Id),
        patient_id: Type.Optional(Id),
        status: Type.Optional(Type.Union(APPOINTMENT_STATUSES.map((status) => Type.Literal(status)))),
        from: Type.Optional(
          Type.String({ maxLength: 40, description: "start_time at or after (ISO-8601 or Unix seconds)" }),
        ),
        to: Type.Optional(Type.String({ maxLength: 40, description: "start_time before (ISO-8601 or Unix seconds)" })),
      }),
    ],
    { additionalProperties: false },
  );

  app.get(
    BASE,
    {
      config: read,
      schema: {
        tags,
        summary: "List appointments, oldest first; filters by clinic, doctor, patient, status and start time",
        querystring: ListAppointmentsQuery,
        response: { 200: ListPage(Appointment), ...errorResponses(400, 401, 403) },
      },
    },
    async (request) => {
      const principal = principalOf(request);
      const { limit = 50, cursor, from, to, ...filter } = request.query;
      const time = (name: string, text: string | undefined) => {
        if (text === undefined) return undefined;
        const ms = parseTimeFilter(text);
        if (ms === undefined) throw invalidRequest(`${name} must be an ISO-8601 time or Unix seconds`);
        return ms;
      };
      const rows = await listAppointments(
        ctx.db,
        principal.businessId,
        { ...filter, from: time("from", from), to: time("to", to) },
        { after: decodeCursor(cursor), limit: limit + 1 },
      );
      const page = toPage(rows, limit, presentAppointment);
      await auditRead(ctx, request, principal, {
        resourceType: "appointment",
        resourceIds: page.data.map((item) => item.appointment_id),
        outcome: "allowed",
      });
      return page;
    },
  );

  for (const path of [`${BASE}/:id`, "/dr/v1/appointment/:id"]) {
    app.get(
      path,
      {
        config: read,
        schema: {
          tags,
          summary: "Get an appointment's details; every read is written to the access log",
          params: IdParams,
          response: { 200: Appointment, ...errorResponses(401, 403, 404) },
        },
      },
      async (request) => {
        const principal = principalOf(request);
        const row = await findAppointment(ctx.db, principal.businessId, request.params.id);
        await auditRead(ctx, request, principal, {
          resourceType: "appointment",
          resourceId: request.params.id,
          outcome: row ? "allowed" : "not_found",
        });
        if (!row) throw notFound("appointment");
        return presentAppointment(row);
      },
    );
  }

  /** Applies a transition (and any field changes) in one transaction, with its event. */
  function transition<B>(
    path: string,
    summary: string,
    body: import("@sinclair/typebox").TSchema,
    callOf: (body: B, row: AppointmentRow) => AppointmentCall,
    changesOf: (body: B, row: AppointmentRow) => Partial<AppointmentRow> = () => ({}),
  ) {
    app.post(
      path,
      {
        config: write,
        schema: {
          tags,
          summary,
          params: IdParams,
          body,
          response: { 200: Appointment, ...errorResponses(400, 401, 403, 404, 409, 413, 415) },
        },
      },
      async (request, reply) => {
        const principal = principalOf(request);
        const input = (request.body ?? {}) as B;
        const { id } = request.params as { id: string };
        return runWrite(ctx, request, reply, async (trx, now) => {
          const row = await mustFind(trx, principal.businessId, id, ctx.adapter.lockRows);
          const next = mustTransition(row.status as AppointmentStatus, callOf(input, row));
          const updated: AppointmentRow = {
            ...row,
            ...changesOf(input, row),
            status: next.to,
            updated_at: now,
            updated_by: principal.clientId,
          };
          await updateAppointment(trx, principal.businessId, id, updated);
          const change = await recordChange(ctx, trx, request, principal, appointmentChange(updated, next.action), now);
          return { status: 200, body: presentAppointment(updated), ...change };
        });
      },
    );
  }

  const isPaid = (payment: Payment | null | undefined) => payment?.payment_status === "paid";
  const currentPayment = (row: AppointmentRow) => parsed<Payment>(row.payment);

  transition<Record<string, never>>(`${BASE}/:id/start`, "Start a booked appointment (BK → OG)", EmptyBody, () => ({
    kind: "start",
  }));
  transition<Static<typeof CompleteBody>>(
    `${BASE}/:id/complete`,
    "Complete an appointment: CM when paid, else CMNP",
    CompleteBody,
    (body, row) => ({ kind: "complete", paid: isPaid(body.payment ?? currentPayment(row)) }),
    (body, row) => ({ payment: json(body.payment ?? currentPayment(row)) }),
  );
  transition<Static<typeof CancelBody>>(
    `${BASE}/:id/cancel`,
    "Cancel an appointment: CN (patient), CND (doctor) or CNS (staff)",
    CancelBody,
    (body) => ({ kind: "cancel", by: body.cancelled_by }),
    (body) => ({ cancelled_by: body.cancelled_by }),
  );
  transition<Record<string, never>>(
    `${BASE}/:id/no-show`,
    "Mark a booked appointment as a no-show (BK → NS)",
    EmptyBody,
    () => ({
      kind: "no_show",
    }),
  );

  app.patch(
    `${BASE}/:id`,
    {
      config: write,
      schema: {
        tags,
        summary:
          "Modify a booked appointment (reschedule, notes, attributes, payment), or record payment of a CMNP one",
        params: IdParams,
        body: ModifyBody,
        response: { 200: Appointment, ...errorResponses(400, 401, 403, 404, 409, 413, 415) },
      },
    },
    async (request, reply) => {
      const principal = principalOf(request);
      const body = request.body ?? {};
      if (Object.keys(body).length === 0) throw invalidRequest("nothing to modify");
      const start = body.start_time === undefined ? undefined : timeInput("start_time", body.start_time);
      const end = body.end_time === undefined ? undefined : timeInput("end_time", body.end_time);
      return runWrite(ctx, request, reply, async (trx, now) => {
        const row = await mustFind(trx, principal.businessId, request.params.id, ctx.adapter.lockRows);
        const from = row.status as AppointmentStatus;
        // A CMNP appointment takes nothing but its payment becoming paid.
        if (from === "CMNP" && Object.keys(body).some((field) => field !== "payment")) {
          mustTransition(from, { kind: "modify", paid: false });
        }
        const next = mustTransition(from, { kind: "modify", paid: isPaid(body.payment) });
        const updated: AppointmentRow = {
          ...row,
          start_time: start ?? row.start_time,
          end_time: end ?? row.end_time,
          ...(body.mode !== undefined ? { mode: body.mode } : {}),
          ...(body.channel !== undefined ? { channel: body.channel } : {}),
          ...(body.notes !== undefined ? { notes: body.notes } : {}),
          ...(body.custom_attributes !== undefined ? { custom_attributes: json(body.custom_attributes) } : {}),
          ...(body.partner_meta !== undefined ? { partner_meta: json(body.partner_meta) } : {}),
          ...(body.payment !== undefined ? { payment: json(body.payment) } : {}),
          status: next.to,
          updated_at: now,
          updated_by: principal.clientId,
        };
        checkTimeRange(updated.start_time, updated.end_time);
        await updateAppointment(trx, principal.businessId, row.id, updated);
        const change = await recordChange(ctx, trx, request, principal, appointmentChange(updated, next.action), now);
        return { status: 200, body: presentAppointment(updated), ...change };
      });
    },
  );
}
