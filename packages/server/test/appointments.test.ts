import { Ajv } from "ajv";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EVENT_CATALOG } from "../src/domain/event-catalog.js";
import { dialects } from "./support/databases.js";
import { type Harness, startHarness, type Tenant } from "./support/harness.js";

const APPOINTMENTS = "/dr/v1/business/appointments";
const WEBHOOKS = "/notification/v1/connect/webhook/subscriptions";

const ajv = new Ajv({ strict: false });
const validators = new Map(
  EVENT_CATALOG.map((entry) => [entry.name, ajv.compile(JSON.parse(JSON.stringify(entry.schema)))]),
);

export const booking = {
  doctor_id: "doc-1",
  patient_id: "pat-1",
  clinic_id: "clinic-1",
  partner_appointment_id: "HIS-1",
  start_time: "2026-12-01T09:00:00Z",
  end_time: "2026-12-01T09:30:00Z",
  mode: "in_clinic",
  notes: "patient reports chest pain since Tuesday",
  custom_attributes: { room: "Cardiology wing" },
};

describe.each(dialects())("appointments on %s", (dialect) => {
  let h: Harness;
  let clinic: Tenant;

  beforeAll(async () => {
    h = await startHarness(dialect);
    clinic = await h.tenant();
    for (const endpoint of ["https://a.example.com/", "https://b.example.com/"]) {
      await clinic.request("POST", WEBHOOKS, { endpoint, event_names: ["appointment.created", "appointment.updated"] });
    }
  });
  afterAll(async () => h?.close());

  async function book(tenant = clinic, body: Record<string, unknown> = booking) {
    const response = await tenant.request("POST", APPOINTMENTS, body);
    expect(response.statusCode, response.body).toBe(201);
    return response.json() as { appointment_id: string; status: string };
  }

  async function eventsOf(resourceId: string) {
    return h.ctx.db.selectFrom("event").selectAll().where("resource_id", "=", resourceId).orderBy("id").execute();
  }

  it("books an appointment and writes its event and one delivery per matching subscription", async () => {
    const appointment = await book();
    expect(appointment).toMatchObject({
      status: "BK",
      doctor_id: "doc-1",
      start_time: "2026-12-01T09:00:00Z",
      custom_attributes: { room: "Cardiology wing" },
      prescription_id: null,
    });
    const [event] = await eventsOf(appointment.appointment_id);
    expect(event?.name).toBe("appointment.created");
    const payload = JSON.parse(event?.payload as string);
    expect(payload).toMatchObject({
      service: "appointment",
      event: "appointment.created",
      event_id: event?.id,
      client_id: clinic.clientId,
      business_id: clinic.businessId,
      data: {
        appointment_id: appointment.appointment_id,
        status: "BK",
        action: "created",
        partner_appointment_id: "HIS-1",
      },
    });
    expect(payload.transaction_id).toMatch(/^req_/);
    expect(validators.get("appointment.created")?.(payload)).toBe(true);
    expect(event?.payload).not.toContain("chest pain");
    expect(event?.payload).not.toContain("Cardiology");
    const deliveries = await h.ctx.db
      .selectFrom("delivery")
      .selectAll()
      .where("event_id", "=", event?.id as string)
      .execute();
    expect(deliveries).toHaveLength(2);
    expect(deliveries.every((d) => d.status === "pending" && d.attempts === 0)).toBe(true);
  });

  it("creates no delivery for non-matching, deleted, disabled or other-business subscriptions", async () => {
    const solo = await h.tenant();
    const hook = (endpoint: string, event_names: string[]) =>
      solo.request("POST", WEBHOOKS, { endpoint, event_names }).then((r) => r.json().id as string);
    const matching = await hook("https://match.example.com/", ["appointment.created"]);
    await hook("https://other-event.example.com/", ["prescription.created"]);
    const deleted = await hook("https://deleted.example.com/", ["appointment.created"]);
    await solo.request("DELETE", `${WEBHOOKS}/${deleted}`);
    const disabled = await hook("https://disabled.example.com/", ["appointment.created"]);
    await solo.request("POST", `${WEBHOOKS}/${disabled}/disable`);
    const stranger = await h.tenant();
    await stranger.request("POST", WEBHOOKS, {
      endpoint: "https://stranger.example.com/",
      event_names: ["appointment.created"],
    });

    const appointment = await book(solo);
    const [event] = await eventsOf(appointment.appointment_id);
    const deliveries = await h.ctx.db
      .selectFrom("delivery")
      .select("subscription_id")
      .where("event_id", "=", event?.id as string)
      .execute();
    expect(deliveries.map((d) => d.subscription_id)).toEqual([matching]);
  });

  const transitions: [string, string, string, Record<string, unknown> | undefined, string, string][] = [
    [
      "modify BK",
      "BK",
      "PATCH",
      { notes: "moved", start_time: "2026-12-01T10:00:00Z", end_time: "2026-12-01T10:30:00Z" },
      "BK",
      "modified",
    ],
    ["start BK", "BK", "start", undefined, "OG", "started"],
    ["complete BK paid", "BK", "complete", { payment: { payment_status: "paid", amount: 500 } }, "CM", "completed"],
    [
      "complete BK unpaid",
      "BK",
      "complete",
      { payment: { payment_status: "unpaid", amount: 500 } },
      "CMNP",
      "completed",
    ],
    ["complete BK without payment", "BK", "complete", undefined, "CMNP", "completed"],
    ["complete OG paid", "OG", "complete", { payment: { payment_status: "paid" } }, "CM", "completed"],
    ["complete OG unpaid", "OG", "complete", { payment: { payment_status: "partially_paid" } }, "CMNP", "completed"],
    ["pay CMNP", "CMNP", "PATCH", { payment: { payment_status: "paid", amount: 500 } }, "CM", "modified"],
    ["cancel BK by patient", "BK", "cancel", { cancelled_by: "patient" }, "CN", "cancelled"],
    ["cancel BK by doctor", "BK", "cancel", { cancelled_by: "doctor" }, "CND", "cancelled"],
    ["cancel OG by staff", "OG", "cancel", { cancelled_by: "staff" }, "CNS", "cancelled"],
    ["no-show BK", "BK", "no-show", undefined, "NS", "no_show"],
  ];

  /** Books an appointment and walks it to the given status. */
  async function appointmentIn(status: string): Promise<string> {
    const { appointment_id: id } = await book();
    const steps: Record<string, [string, object | undefined][]> = {
      BK: [],
      OG: [["start", undefined]],
      CM: [["complete", { payment: { payment_status: "paid" } }]],
      CMNP: [["complete", undefined]],
      CN: [["cancel", { cancelled_by: "patient" }]],
      NS: [["no-show", undefined]],
    };
    for (const [call, body] of steps[status] ?? []) {
      const response = await clinic.request("POST", `${APPOINTMENTS}/${id}/${call}`, body);
      expect(response.statusCode, response.body).toBe(200);
    }
    return id;
  }

  it.each(transitions)("follows the state machine: %s", async (_name, from, call, body, to, action) => {
    const id = await appointmentIn(from);
    const response =
      call === "PATCH"
        ? await clinic.request("PATCH", `${APPOINTMENTS}/${id}`, body)
        : await clinic.request("POST", `${APPOINTMENTS}/${id}/${call}`, body);
    expect(response.statusCode, response.body).toBe(200);
    expect(response.json().status).toBe(to);
    const last = (await eventsOf(id)).at(-1);
    const payload = JSON.parse(last?.payload as string);
    expect(payload.event).toBe("appointment.updated");
    expect(payload.data).toMatchObject({ status: to, action, appointment_id: id });
    expect(validators.get("appointment.updated")?.(payload)).toBe(true);
  });

  const forbidden: [string, string, Record<string, unknown> | undefined][] = [
    ["OG", "start", undefined],
    ["OG", "no-show", undefined],
    ["OG", "PATCH", { notes: "during the visit" }],
    ["CM", "complete", undefined],
    ["CM", "cancel", { cancelled_by: "patient" }],
    ["CM", "PATCH", { notes: "late note" }],
    ["CMNP", "PATCH", { notes: "nope" }],
    ["CMNP", "PATCH", { payment: { payment_status: "unpaid" } }],
    ["CMNP", "start", undefined],
    ["CN", "start", undefined],
    ["CN", "complete", undefined],
    ["CN", "PATCH", { notes: "reopen" }],
    ["NS", "cancel", { cancelled_by: "staff" }],
    ["NS", "no-show", undefined],
  ];

  it.each(forbidden)("refuses from %s: %s with 409 and no event", async (from, call, body) => {
    const id = await appointmentIn(from);
    const before = (await eventsOf(id)).length;
    const response =
      call === "PATCH"
        ? await clinic.request("PATCH", `${APPOINTMENTS}/${id}`, body)
        : await clinic.request("POST", `${APPOINTMENTS}/${id}/${call}`, body);
    expect(response.statusCode, response.body).toBe(409);
    expect(response.json().error.code).toBe("CONFLICT");
    expect((await eventsOf(id)).length).toBe(before);
  });

  it.each([
    [{ ...booking, end_time: "2026-12-01T08:00:00Z" }, /end_time must be after/],
    [{ ...booking, start_time: "tomorrow" }, /ISO-8601/],
    [{ ...booking, mode: "video" }, /mode/],
    [{ ...booking, doctor_id: undefined }, /doctor_id/],
    [{ ...booking, payment: { payment_status: "maybe" } }, /payment/],
    [{ ...booking, diagnosis: "flu" }, /unknown field "diagnosis"/],
  ])("refuses a bad booking %#", async (body, message) => {
    const response = await clinic.request("POST", APPOINTMENTS, body);
    expect(response.statusCode).toBe(400);
    expect(response.json().error.message).toMatch(message);
  });

  it("lets only one of two concurrent transitions win, with one event", async () => {
    for (let i = 0; i < 5; i++) {
      const { appointment_id: id } = await book();
      const [a, b] = await Promise.all([
        clinic.request("POST", `${APPOINTMENTS}/${id}/no-show`),
        clinic.request("POST", `${APPOINTMENTS}/${id}/cancel`, { cancelled_by: "staff" }),
      ]);
      expect([a.statusCode, b.statusCode].sort()).toEqual([200, 409]);
      expect(await eventsOf(id)).toHaveLength(2);
    }
  });

  it("accepts Unix seconds for times and answers ISO-8601", async () => {
    const appointment = await book(clinic, { ...booking, start_time: 1_796_115_600, end_time: 1_796_117_400 });
    expect(appointment).toMatchObject({ start_time: "2026-12-01T09:00:00Z", end_time: "2026-12-01T09:30:00Z" });
  });

  it("reads an appointment at both paths, and 404s another business's", async () => {
    const { appointment_id: id } = await book();
    for (const path of [`${APPOINTMENTS}/${id}`, `/dr/v1/appointment/${id}`]) {
      const response = await clinic.request("GET", path);
      expect(response.statusCode).toBe(200);
      expect(response.json()).toMatchObject({ appointment_id: id, notes: booking.notes });
    }
    const outsider = await h.tenant();
    expect((await outsider.request("GET", `${APPOINTMENTS}/${id}`)).statusCode).toBe(404);
    expect((await outsider.request("POST", `${APPOINTMENTS}/${id}/start`)).statusCode).toBe(404);
    expect((await outsider.request("PATCH", `${APPOINTMENTS}/${id}`, { notes: "x" })).statusCode).toBe(404);
    expect((await clinic.request("GET", `${APPOINTMENTS}/${id}`)).json().status).toBe("BK");
  });

  it("lists with filters and cursor pages", async () => {
    const desk = await h.tenant();
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const body = {
        ...booking,
        doctor_id: i % 2 ? "doc-odd" : "doc-even",
        start_time: `2026-12-0${i + 1}T09:00:00Z`,
        end_time: `2026-12-0${i + 1}T10:00:00Z`,
      };
      ids.push((await book(desk, body)).appointment_id);
    }
    const even = (await desk.request("GET", `${APPOINTMENTS}?doctor_id=doc-even`)).json();
    expect(even.data.map((a: { appointment_id: string }) => a.appointment_id)).toEqual([ids[0], ids[2], ids[4]]);
    const window = (
      await desk.request("GET", `${APPOINTMENTS}?from=2026-12-02T00:00:00Z&to=2026-12-04T00:00:00Z`)
    ).json();
    expect(window.data).toHaveLength(2);
    const first = (await desk.request("GET", `${APPOINTMENTS}?limit=2`)).json();
    expect(first.data).toHaveLength(2);
    const second = (await desk.request("GET", `${APPOINTMENTS}?limit=2&cursor=${first.next_cursor}`)).json();
    expect(second.data.map((a: { appointment_id: string }) => a.appointment_id)).toEqual([ids[2], ids[3]]);
    expect((await desk.request("GET", `${APPOINTMENTS}?status=XX`)).statusCode).toBe(400);
    expect((await desk.request("GET", `${APPOINTMENTS}?from=soon`)).statusCode).toBe(400);
  });

  it("needs appointments:write to change and appointments:read to read", async () => {
    const reader = await clinic.colleague(["appointments:read"]);
    expect((await reader.request("POST", APPOINTMENTS, booking)).statusCode).toBe(403);
    const writer = await clinic.colleague(["appointments:write"]);
    const { appointment_id: id } = await book(writer);
    expect((await writer.request("GET", `${APPOINTMENTS}/${id}`)).statusCode).toBe(403);
    expect((await reader.request("GET", `${APPOINTMENTS}/${id}`)).statusCode).toBe(200);
  });
});
