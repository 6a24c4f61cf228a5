import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { dialects } from "./support/databases.js";
import { booking } from "./support/fixtures.js";
import { type Harness, startHarness, type Tenant } from "./support/harness.js";

const APPOINTMENTS = "/dr/v1/business/appointments";
const LOGS = "/audit/v1/access-logs";

describe.each(dialects())("the access log on %s", (dialect) => {
  let h: Harness;
  let clinic: Tenant;
  let auditor: Tenant;
  let appointmentId: string;

  beforeAll(async () => {
    h = await startHarness(dialect);
    clinic = await h.tenant();
    auditor = await clinic.colleague(["audit:read"]);
    appointmentId = (await clinic.request("POST", APPOINTMENTS, booking)).json().appointment_id;
  });
  afterAll(async () => h?.close());

  const logsFor = async (query: string) => {
    const response = await auditor.request("GET", `${LOGS}?${query}`);
    expect(response.statusCode, response.body).toBe(200);
    return response.json().data as Record<string, unknown>[];
  };

  it("records an allowed read with who, what, when, where from", async () => {
    await clinic.request("GET", `${APPOINTMENTS}/${appointmentId}`, undefined, { "user-agent": "receiver/1.0" });
    const [log] = await logsFor(`resource_id=${appointmentId}&outcome=allowed`);
    expect(log).toMatchObject({
      client_id: clinic.clientId,
      resource_type: "appointment",
      resource_id: appointmentId,
      outcome: "allowed",
      method: "GET",
      path: `${APPOINTMENTS}/${appointmentId}`,
      user_agent: "receiver/1.0",
      ip: "127.0.0.1",
    });
    expect(log?.request_id).toMatch(/^req_/);
  });

  it("records a read without the scope as forbidden and another business's record as not_found", async () => {
    const noScope = await clinic.colleague(["webhooks:read"]);
    expect((await noScope.request("GET", `/dr/v1/appointment/${appointmentId}`)).statusCode).toBe(403);
    const [forbidden] = await logsFor(`client_id=${noScope.clientId}`);
    expect(forbidden).toMatchObject({ outcome: "forbidden", resource_id: appointmentId });

    const stranger = await h.tenant();
    const strangerAuditor = await stranger.colleague(["audit:read"]);
    expect((await stranger.request("GET", `${APPOINTMENTS}/${appointmentId}`)).statusCode).toBe(404);
    const theirs = (await strangerAuditor.request("GET", `${LOGS}?outcome=not_found`)).json().data;
    expect(theirs).toHaveLength(1);
    expect(theirs[0]).toMatchObject({ client_id: stranger.clientId, resource_id: appointmentId, outcome: "not_found" });
    // The owner's log does not show the stranger's attempt: each business sees its own callers.
    expect(await logsFor(`client_id=${stranger.clientId}`)).toEqual([]);
  });

  it("records a list read with the ids it returned, found by resource_id", async () => {
    await clinic.request("GET", `${APPOINTMENTS}?limit=5`);
    const logs = await logsFor(`resource_id=${appointmentId}&client_id=${clinic.clientId}`);
    const list = logs.find((log) => log.resource_ids !== null);
    expect(list?.resource_ids).toContain(appointmentId);
    expect(list?.resource_id).toBeNull();
  });

  it("records prescription reads too", async () => {
    const rx = (
      await clinic.request("POST", "/dr/v1/business/prescription", {
        appointment_id: appointmentId,
        prescription_details: [{ resource_type: "notes", text: "x" }],
      })
    ).json();
    await clinic.request("GET", `/dr/v1/prescription/${rx.prescription_id}`);
    await clinic.request("GET", `/dr/v1/business/prescription/${rx.prescription_id}/versions/1`);
    expect(await logsFor(`resource_type=prescription&resource_id=${rx.prescription_id}`)).toHaveLength(2);
  });

  it("filters by time, pages, and exports NDJSON and CSV", async () => {
    for (let i = 0; i < 3; i++) await clinic.request("GET", `${APPOINTMENTS}/${appointmentId}`);
    const all = await logsFor("limit=500");
    const page = (await auditor.request("GET", `${LOGS}?limit=2`)).json();
    expect(page.data).toHaveLength(2);
    expect(page.next_cursor).toBeTruthy();
    expect(await logsFor("since=2999-01-01T00:00:00Z")).toEqual([]);
    expect(await logsFor("until=2000-01-01T00:00:00Z")).toEqual([]);

    const ndjson = await auditor.request("GET", `${LOGS}?format=ndjson`);
    expect(ndjson.headers["content-type"]).toMatch(/application\/x-ndjson/);
    const lines = ndjson.body
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line));
    expect(lines.map((l) => l.id)).toEqual(all.map((l) => l.id));

    const csv = await auditor.request("GET", `${LOGS}?format=csv&outcome=allowed`);
    expect(csv.headers["content-type"]).toMatch(/text\/csv/);
    const rows = csv.body.trim().split("\r\n");
    expect(rows[0]).toBe(
      "id,time,client_id,resource_type,resource_id,resource_ids,outcome,method,path,request_id,ip,user_agent",
    );
    expect(rows.length - 1).toBe(all.filter((l) => l.outcome === "allowed").length);
  });

  it("defuses spreadsheet formulas in CSV, after a ; or , as well as at a cell's start", async () => {
    const agent = "x;=HYPERLINK(1),+2; -3;@SUM(4)";
    await clinic.request("GET", `${APPOINTMENTS}/${appointmentId}`, undefined, { "user-agent": agent });
    const csv = await auditor.request("GET", `${LOGS}?format=csv&outcome=allowed`);
    const row = csv.body.split("\r\n").find((line) => line.includes("HYPERLINK"));
    // Split as a spreadsheet set to ";" or "," would: no piece may start (after blanks) with a formula character.
    for (const piece of (row ?? "").split(/[;,]/)) expect(piece.replace(/^[\s"]+/, ""), row).not.toMatch(/^[=+\-@]/);
    expect(row).toContain(`"x;'=HYPERLINK(1),'+2; '-3;'@SUM(4)"`);
  });

  it("refuses an unknown format or time", async () => {
    expect((await auditor.request("GET", `${LOGS}?format=xml`)).statusCode).toBe(400);
    expect((await auditor.request("GET", `${LOGS}?since=whenever`)).statusCode).toBe(400);
  });

  it("needs audit:read, and offers no way to change the log", async () => {
    expect((await clinic.colleague(["appointments:read"]).then((c) => c.request("GET", LOGS))).statusCode).toBe(403);
    for (const method of ["POST", "PATCH", "PUT", "DELETE"]) {
      expect((await auditor.request(method, LOGS, method === "DELETE" ? undefined : {})).statusCode).toBe(405);
    }
  });

  it("publishes the event catalog with schemas and examples", async () => {
    const response = await clinic.request("GET", "/notification/v1/connect/webhook/event-types");
    const catalog = response.json().data as { name: string; schema: { properties: object }; example: object }[];
    expect(catalog.map((entry) => entry.name)).toEqual([
      "appointment.created",
      "appointment.updated",
      "prescription.created",
      "prescription.updated",
      "webhook.degraded",
      "webhook.disabled",
      "webhook.recovered",
      "delivery.exhausted",
    ]);
    for (const entry of catalog) expect(Object.keys(entry.schema.properties)).toContain("event_id");
  });
});
