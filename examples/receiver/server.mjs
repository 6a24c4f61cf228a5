// An integrator's webhook receiver, the seed's example workflow:
// 1. receive the webhook and verify its signature on the raw body,
// 2. de-duplicate on event_id (delivery is at least once),
// 3. fetch the full record through the API (the payload carries ids only),
// 4. process it (here: one JSON line on stdout).
// Answer 2xx only once processing succeeded: anything else makes carehooks retry.
import http from "node:http";
import {
  CarehooksClient,
  Deduplicator,
  isAppointmentCreated,
  isAppointmentUpdated,
  isPrescriptionCreated,
  isPrescriptionUpdated,
  nodeHandler,
} from "@carehooks/sdk";

const env = (name, fallback) => {
  const value = process.env[name] ?? fallback;
  if (value === undefined) throw new Error(`set ${name}`);
  return value;
};

const client = new CarehooksClient({
  baseUrl: env("CAREHOOKS_URL"),
  clientId: env("CAREHOOKS_CLIENT_ID"),
  clientSecret: env("CAREHOOKS_CLIENT_SECRET"),
});
// CAREHOOKS_SIGNING_KEY, as in the SDK's README; WEBHOOK_SIGNING_KEY, its earlier name, still works.
const signingKey = process.env.CAREHOOKS_SIGNING_KEY ?? env("WEBHOOK_SIGNING_KEY");
const port = Number(env("PORT", "3000"));
const path = env("WEBHOOK_PATH", "/webhooks/carehooks");
const dedupe = new Deduplicator();

const log = (line) => process.stdout.write(`${JSON.stringify({ time: new Date().toISOString(), ...line })}\n`);

/** Fetches what the event is about. Every such read lands in carehooks' access log. */
async function details(event) {
  if (isAppointmentCreated(event) || isAppointmentUpdated(event)) {
    const appointment = await client.appointments.get(event.data.appointment_id);
    return {
      appointment_id: appointment.appointment_id,
      status: appointment.status,
      start_time: appointment.start_time,
    };
  }
  if (isPrescriptionCreated(event) || isPrescriptionUpdated(event)) {
    const prescription = await client.prescriptions.get(event.data.prescription_id);
    return {
      prescription_id: prescription.prescription_id,
      version: prescription.version,
      items: prescription.prescription_details.length,
    };
  }
  // An operational event (webhook.degraded, .disabled, .recovered, delivery.exhausted) says all it has to say:
  // a real receiver would page someone here.
  return event.data;
}

const handle = nodeHandler(
  signingKey,
  async (event) => {
    if (event.test) {
      // A test event (`carehooks webhooks test`): its ids are examples, there is nothing to fetch.
      log({ verified: true, event_id: event.event_id, event: event.event, test: true });
      return;
    }
    const outcome = await dedupe.process(event, async () => {
      const fetched = await details(event);
      log({ verified: true, event_id: event.event_id, event: event.event, action: event.data.action, fetched });
    });
    if (outcome.duplicate) log({ verified: true, event_id: event.event_id, duplicate: true });
  },
  { onError: (error) => log({ verified: false, error: error.message }) },
);

const server = http.createServer((request, response) => {
  if (request.url === path) return void handle(request, response);
  response.writeHead(404).end();
});
server.listen(port, "127.0.0.1", () => log({ listening: `http://127.0.0.1:${server.address().port}${path}` }));

for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => server.close(() => process.exit(0)));
