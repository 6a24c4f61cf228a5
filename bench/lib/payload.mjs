// Event payloads and signature headers shaped like carehooks' own (docs/webhooks.md),
// for the raw-POST baseline and the peer queues.
import { createHmac, randomBytes } from "node:crypto";

const CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/** A prefixed, time-sortable-looking id (`evt_` + 26 Crockford base32 characters). */
export function fakeId(prefix) {
  const bytes = randomBytes(26);
  let out = "";
  for (const byte of bytes) out += CROCKFORD[byte & 31];
  return `${prefix}_${out}`;
}

/** A fresh `whsec_` signing key (32 random bytes). */
export function newSigningKey() {
  return `whsec_${randomBytes(32).toString("base64")}`;
}

/** The ids of one sender's events; the tag (clinic_id) tells the receiver which measurement they belong to. */
export function benchIdentity(tag) {
  return {
    businessId: fakeId("biz"),
    clientId: fakeId("cli"),
    doctorId: "doc_bench_1",
    patientId: "pat_bench_1",
    clinicId: tag,
    partnerId: "partner-apt-1",
  };
}

/**
 * The event the engine sends for appointment.created (same keys, same order), as an object; its
 * event and appointment ids are fresh ones unless given.
 */
export function appointmentEvent({
  businessId,
  clientId,
  doctorId,
  patientId,
  clinicId,
  partnerId,
  eventId = fakeId("evt"),
  appointmentId = fakeId("apt"),
}) {
  const now = Math.floor(Date.now() / 1000);
  const event = {
    service: "appointment",
    event: "appointment.created",
    event_id: eventId,
    event_time: now,
    timestamp: now,
    transaction_id: fakeId("req"),
    client_id: clientId,
    business_id: businessId,
    data: {
      appointment_id: appointmentId,
      doctor_id: doctorId,
      patient_id: patientId,
      clinic_id: clinicId,
      partner_appointment_id: partnerId,
      status: "BK",
      action: "created",
      created_at: now,
      modified_at: now,
    },
  };
  return { eventId, appointmentId, event };
}

/** The same body the engine sends for appointment.created (~560 bytes), serialised. */
export function appointmentPayload(identity) {
  const { eventId, appointmentId, event } = appointmentEvent(identity);
  return { eventId, appointmentId, body: JSON.stringify(event) };
}

function standardKeyBytes(key) {
  return key.startsWith("whsec_") ? Buffer.from(key.slice(6), "base64") : Buffer.from(key, "utf8");
}

/** The headers the engine sends with one signing key: webhook-id/-timestamp, Eka and Standard Webhooks signatures. */
export function signedHeaders(key, eventId, body, version = "0.1.0") {
  const t = Math.floor(Date.now() / 1000);
  const eka = createHmac("sha256", Buffer.from(key, "utf8")).update(`${t}.${body}`, "utf8").digest("hex");
  const std = createHmac("sha256", standardKeyBytes(key)).update(`${eventId}.${t}.${body}`, "utf8").digest("base64");
  return {
    "content-type": "application/json",
    "user-agent": `carehooks/${version}`,
    "webhook-id": eventId,
    "webhook-timestamp": String(t),
    "eka-webhook-signature": `t=${t},v1=${eka}`,
    "webhook-signature": `v1,${std}`,
  };
}

/** Checks an Eka signature header (any v1 entry) against the raw body; no timestamp tolerance check. */
export function verifyEka(key, header, rawBody) {
  if (typeof header !== "string") return false;
  const parts = header.split(",").map((part) => part.split("="));
  const t = parts.find(([k]) => k === "t")?.[1];
  if (t === undefined) return false;
  const expected = createHmac("sha256", Buffer.from(key, "utf8")).update(`${t}.`).update(rawBody).digest("hex");
  return parts.some(([k, v]) => k === "v1" && v === expected);
}

/** Checks a Standard Webhooks signature header (any v1 entry). */
export function verifyStandard(key, id, t, header, rawBody) {
  if (typeof header !== "string") return false;
  const expected = createHmac("sha256", standardKeyBytes(key)).update(`${id}.${t}.`).update(rawBody).digest("base64");
  return header.split(" ").some((entry) => entry === `v1,${expected}`);
}
