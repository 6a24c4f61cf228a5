import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { revokeApiClient } from "../src/store/api-clients.js";
import { dialects } from "./support/databases.js";
import { booking, until } from "./support/fixtures.js";
import { type Harness, startHarness } from "./support/harness.js";
import { openStream } from "./support/sse.js";
import { recordStatements } from "./support/statements.js";

const STREAM = "/notification/v1/connect/webhook/stream";
const APPOINTMENTS = "/dr/v1/business/appointments";

describe.each(dialects())("open streams on %s", (dialect) => {
  let h: Harness;
  let base: string;

  beforeAll(async () => {
    h = await startHarness(dialect, {
      CAREHOOKS_POLL_INTERVAL: "200ms",
      CAREHOOKS_STREAMS_PER_CLIENT: "2",
      CAREHOOKS_STREAMS_PER_PROCESS: "30",
    });
    base = await h.app.listen({ host: "127.0.0.1", port: 0 });
  });
  afterAll(async () => h?.close());

  const url = () => `${base}${STREAM}`;

  it("ends a stream within a few seconds of its client's revocation, and sends nothing after", async () => {
    const owner = await h.tenant();
    const doomed = await owner.colleague();
    const stream = await openStream(url(), doomed.accessToken);
    await owner.request("POST", APPOINTMENTS, booking);
    await stream.waitFor(1);
    await revokeApiClient(h.ctx.adapter, doomed.clientId);
    const revokedAt = Date.now();
    await until(() => stream.ended, 5000, "the stream to end after revocation");
    expect(Date.now() - revokedAt).toBeLessThan(3000);
    expect(stream.comments.join("\n")).toMatch(/revoked/);
    await owner.request("POST", APPOINTMENTS, booking);
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(stream.messages).toHaveLength(1);
  });

  it("ends a stream within a few seconds of its token's expiry", async () => {
    const clinic = await h.tenant();
    // A token with two seconds left: issued as long ago as its lifetime, less two seconds.
    const ttl = h.ctx.tokens.accessTtlMs;
    const token = await h.ctx.tokens.issue(
      { clientId: clinic.clientId, businessId: clinic.businessId },
      Date.now() - ttl + 2000,
    );
    const stream = await openStream(url(), token);
    expect(stream.response.status).toBe(200);
    await clinic.request("POST", APPOINTMENTS, booking);
    await stream.waitFor(1);
    await until(() => stream.ended, 6000, "the stream to end after the token expired");
    expect(stream.comments.join("\n")).toMatch(/expired/);
    await clinic.request("POST", APPOINTMENTS, booking);
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(stream.messages).toHaveLength(1);
  });

  it("answers 429 in the error shape past the per-client cap, and lets one in once another closes", async () => {
    const clinic = await h.tenant();
    const first = await openStream(url(), clinic.accessToken);
    const second = await openStream(url(), clinic.accessToken);
    const third = await h.app.inject({
      method: "GET",
      url: STREAM,
      headers: { authorization: `Bearer ${clinic.accessToken}` },
    });
    expect(third.statusCode).toBe(429);
    expect(third.json().error).toMatchObject({
      code: "RATE_LIMITED",
      message: expect.stringMatching(/2 open streams/),
    });
    expect(Number(third.headers["retry-after"])).toBeGreaterThan(0);
    // Another client of the same business has its own allowance.
    const colleague = await clinic.colleague();
    const theirs = await openStream(url(), colleague.accessToken);
    expect(theirs.response.status).toBe(200);
    first.close();
    const retried: Awaited<ReturnType<typeof openStream>>[] = [];
    await until(
      async () => {
        const stream = await openStream(url(), clinic.accessToken);
        retried.push(stream);
        return stream.response.status === 200 || undefined;
      },
      3000,
      "a stream slot to free up",
    );
    for (const stream of retried) stream.close();
    second.close();
    theirs.close();
  });

  it("answers 429 past the per-process cap", async () => {
    const streams = [];
    let refused: Response | undefined;
    for (let i = 0; i < 31 && !refused; i++) {
      const tenant = await h.tenant();
      const stream = await openStream(url(), tenant.accessToken);
      if (stream.response.status === 429) refused = stream.response;
      else streams.push(stream);
    }
    expect(refused?.status).toBe(429);
    expect(refused?.headers.get("retry-after")).toBeTruthy();
    expect(streams.length).toBeLessThanOrEqual(30);
    for (const stream of streams) stream.close();
  });
});

describe.skipIf(!dialects().includes("postgres"))("one shared feed per process", () => {
  it("scans the event table about once per poll however many streams are open", async () => {
    const h = await startHarness("postgres", {
      CAREHOOKS_POLL_INTERVAL: "200ms",
      CAREHOOKS_STREAMS_PER_CLIENT: "100",
    });
    const log = recordStatements();
    try {
      const base = await h.app.listen({ host: "127.0.0.1", port: 0 });
      const clinic = await h.tenant();
      const streams = await Promise.all(
        Array.from({ length: 25 }, () => openStream(`${base}${STREAM}`, clinic.accessToken)),
      );
      log.take();
      await new Promise((resolve) => setTimeout(resolve, 2000));
      const scans = log.take().filter((sql) => /from "event"/i.test(sql)).length;
      // Ten polls in two seconds; 25 streams polling each on their own would be 250.
      expect(scans).toBeLessThanOrEqual(15);
      await clinic.request("POST", APPOINTMENTS, booking);
      await Promise.all(streams.map((stream) => stream.waitFor(1)));
      for (const stream of streams) stream.close();
    } finally {
      log.stop();
      await h.close();
    }
  });
});
