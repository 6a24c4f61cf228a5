import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { newId } from "../src/domain/ids.js";
import { dialects } from "./support/databases.js";
import { booking } from "./support/fixtures.js";
import { type Harness, startHarness, type Tenant } from "./support/harness.js";
import { openStream } from "./support/sse.js";

const STREAM = "/notification/v1/connect/webhook/stream";
const APPOINTMENTS = "/dr/v1/business/appointments";

describe.each(dialects())("the event stream on %s", (dialect) => {
  let h: Harness;
  let clinic: Tenant;
  let base: string;

  beforeAll(async () => {
    h = await startHarness(dialect, { CAREHOOKS_POLL_INTERVAL: "200ms" });
    clinic = await h.tenant();
    base = await h.app.listen({ host: "127.0.0.1", port: 0 });
  });
  afterAll(async () => h?.close());

  it("streams new events of the business as they commit, and resumes with Last-Event-ID", async () => {
    const stream = await openStream(`${base}${STREAM}`, clinic.accessToken);
    expect(stream.response.headers.get("content-type")).toMatch(/text\/event-stream/);
    const stranger = await h.tenant();
    await stranger.request("POST", APPOINTMENTS, booking);
    const first = (await clinic.request("POST", APPOINTMENTS, booking)).json();
    const [message] = await stream.waitFor(1);
    expect(message?.event).toBe("appointment.created");
    expect(message?.id).toMatch(/^evt_/);
    expect(JSON.parse(message?.data ?? "{}").data.appointment_id).toBe(first.appointment_id);
    stream.close();

    const missed = [];
    for (let i = 0; i < 3; i++)
      missed.push((await clinic.request("POST", APPOINTMENTS, booking)).json().appointment_id);
    const resumed = await openStream(`${base}${STREAM}`, clinic.accessToken, message?.id);
    const replay = await resumed.waitFor(3);
    expect(replay.map((m) => JSON.parse(m.data).data.appointment_id)).toEqual(missed);
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect(resumed.messages).toHaveLength(3);
    expect(resumed.messages.map((m) => JSON.parse(m.data).business_id).every((id) => id === clinic.businessId)).toBe(
      true,
    );
    resumed.close();
  });

  it("keeps up with a burst of more events than one scan page inside the trailing window", async () => {
    const busy = await h.tenant();
    const stream = await openStream(`${base}${STREAM}`, busy.accessToken);
    await new Promise((resolve) => setTimeout(resolve, 100));
    const now = Date.now();
    const rows = Array.from({ length: 2500 }, (_, i) => ({
      id: newId("event", now),
      business_id: busy.businessId,
      name: "appointment.created",
      resource_type: "appointment",
      resource_id: `apt_${i}`,
      payload: JSON.stringify({ n: i }),
      created_at: now,
    }));
    for (let i = 0; i < rows.length; i += 500)
      await h.ctx.db
        .insertInto("event")
        .values(rows.slice(i, i + 500))
        .execute();
    h.ctx.wakeup.notify();
    const got = await stream.waitFor(2500, 20_000);
    expect(new Set(got.map((m) => m.id)).size).toBe(2500);
    // The API still answers while the stream catches up.
    expect((await busy.request("GET", "/notification/v1/connect/webhook/subscriptions")).statusCode).toBe(200);
    stream.close();
  });

  it("needs webhooks:read and refuses unknown event filters", async () => {
    const reader = await clinic.colleague(["appointments:read"]);
    expect((await reader.request("GET", STREAM)).statusCode).toBe(403);
    expect((await clinic.request("GET", `${STREAM}?events=nope`)).statusCode).toBe(400);
  });
});
