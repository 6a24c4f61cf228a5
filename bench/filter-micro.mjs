#!/usr/bin/env node
// What a webhook's attribute filter adds to a create: choosing the subscribers of one event, with
// and without a filter (the filter needs the payload parsed; an unfiltered webhook never parses it),
// and compiling a filter (once per stored filter text and process). Rounds alternate so both see
// the same machine load.
//
//   npm run build && node bench/filter-micro.mjs
import path from "node:path";
import { pathToFileURL } from "node:url";
import { SERVER_DIR } from "./lib/deps.mjs";

const load = (file) => import(pathToFileURL(path.join(SERVER_DIR, "dist", file)).href);
const { compileFilter } = await load("domain/event-filter.js");
const { FILTER_FIELDS } = await load("domain/event-catalog.js");
const { subscribersOf } = await load("store/subscriptions.js");
const { appointmentEvent } = await load("domain/event-payloads.js");

const FILTER = { "data.action": { $in: ["created", "modified"] }, "data.clinic_id": { $neq: "clinic-0" } };
const now = Date.now();
const payload = appointmentEvent(
  { eventId: "evt_1", at: now, transactionId: "req_1", clientId: "cli_1", businessId: "biz_1" },
  {
    id: "apt_1",
    doctor_id: "doc-1",
    patient_id: "pat-1",
    clinic_id: "clinic-7",
    partner_appointment_id: null,
    status: "BK",
    created_at: now,
    updated_at: now,
  },
  "created",
);
const plain = [{ id: "wh_1", eventNames: ["appointment.created"] }];
const filtered = [{ id: "wh_1", eventNames: ["appointment.created"], matches: compileFilter(FILTER, FILTER_FIELDS) }];

const ROUNDS = 4;
const N = 200_000;
const perCreate = { none: [], filter: [] };
for (let round = 0; round < ROUNDS; round++) {
  for (const [name, subscriptions] of [
    ["none", plain],
    ["filter", filtered],
  ]) {
    const started = performance.now();
    for (let i = 0; i < N; i++) subscribersOf(subscriptions, "appointment.created", () => JSON.parse(payload));
    perCreate[name].push(((performance.now() - started) * 1000) / N);
  }
}
const compiles = 20_000;
const started = performance.now();
for (let i = 0; i < compiles; i++) compileFilter(structuredClone(FILTER), FILTER_FIELDS);
const best = (values) => Math.min(...values).toFixed(2);
console.log(`subscribers of one event, no filter:   ${best(perCreate.none)} µs per create (best of ${ROUNDS})`);
console.log(`subscribers of one event, with filter: ${best(perCreate.filter)} µs per create (best of ${ROUNDS})`);
console.log(
  `compiling the filter:                  ${(((performance.now() - started) * 1000) / compiles).toFixed(2)} µs`,
);
