import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WorkLimit, WorkLimitFull } from "../src/ops/work-limit.js";
import { createApiClient } from "../src/store/api-clients.js";
import { createBusiness } from "../src/store/businesses.js";
import { type Harness, startHarness } from "./support/harness.js";

const LOGIN = "/connect-auth/v1/account/login";
const REFRESH = "/connect-auth/v1/account/refresh";

// The limiter is in memory per process: the database behind it does not change what is counted.
describe("login throttling", () => {
  let h: Harness;
  let clientId: string;
  let clientSecret: string;
  let address = 0;
  /** Each test its own address, so buckets do not carry over. */
  const nextAddress = () => `10.0.0.${++address}`;

  beforeAll(async () => {
    h = await startHarness("sqlite", {
      CAREHOOKS_LOGIN_RATE_LIMIT: "3",
      CAREHOOKS_LOGIN_RATE_LIMIT_PER_CLIENT: "5",
    });
    const business = await createBusiness(h.ctx.db, "Throttled Clinic");
    ({
      client: { id: clientId },
      secret: clientSecret,
    } = await createApiClient(h.ctx.db, { businessId: business.id, name: "t", scopes: ["webhooks:read"] }));
  });
  afterAll(async () => h?.close());

  // By default a client id of the address's own, so only the address's bucket fills.
  const login = (
    url: string,
    remoteAddress: string,
    secret = "chs_wrong",
    id = `cli_${remoteAddress.replaceAll(".", "_")}`,
  ) => h.app.inject({ method: "POST", url, remoteAddress, payload: { client_id: id, client_secret: secret } });

  it("counts a percent-encoded login path in the login bucket, and lets no secret through past it", async () => {
    const ip = nextAddress();
    for (let i = 0; i < 3; i++) expect((await login(LOGIN, ip)).statusCode).toBe(401);
    for (const url of ["/%63onnect-auth/v1/account/login", "/connect-auth/v1/account/%6cogin", `${LOGIN}/`]) {
      const limited = await login(url, ip, clientSecret, clientId);
      expect(limited.statusCode, url).toBe(429);
      expect(limited.json().error.code).toBe("RATE_LIMITED");
      expect(Number(limited.headers["retry-after"])).toBeGreaterThan(0);
    }
  });

  it("spends an encoded path's attempts from the same bucket as the plain path's", async () => {
    const ip = nextAddress();
    for (let i = 0; i < 3; i++) expect((await login("/%63onnect-auth/v1/account/login", ip)).statusCode).toBe(401);
    expect((await login(LOGIN, ip)).statusCode).toBe(429);
  });

  it("counts a login whose query string mentions /refresh as a login", async () => {
    const ip = nextAddress();
    for (let i = 0; i < 3; i++) expect((await login(`${LOGIN}?x=/refresh`, ip)).statusCode).toBe(401);
    expect((await login(LOGIN, ip)).statusCode).toBe(429);
    // The refresh bucket was not touched.
    const refresh = await h.app.inject({
      method: "POST",
      url: REFRESH,
      remoteAddress: ip,
      payload: { refresh_token: "chr_unknown" },
    });
    expect(refresh.statusCode).toBe(401);
  });

  it("counts failed attempts per client id across addresses, and then holds back even the right secret", async () => {
    const target = "cli_guessed";
    for (let i = 0; i < 5; i++) expect((await login(LOGIN, nextAddress(), "chs_wrong", target)).statusCode).toBe(401);
    const limited = await login(LOGIN, nextAddress(), "chs_wrong", target);
    expect(limited.statusCode).toBe(429);
    expect(limited.json().error.message).toMatch(/for this client/);
    // Successes do not count: a client logging in often is not locked out by itself.
    for (let i = 0; i < 8; i++)
      expect((await login(LOGIN, nextAddress(), clientSecret, clientId)).statusCode).toBe(200);
    for (let i = 0; i < 5; i++) await login(LOGIN, nextAddress(), "chs_wrong", clientId);
    expect((await login(LOGIN, nextAddress(), clientSecret, clientId)).statusCode).toBe(429);
  });
});

describe("the credential check cap", () => {
  it("runs at most its concurrency at once, queues a bounded number, and refuses the rest", async () => {
    const limit = new WorkLimit(2, 3);
    let running = 0;
    let peak = 0;
    const releases: (() => void)[] = [];
    const task = () =>
      new Promise<void>((resolve) => {
        running += 1;
        peak = Math.max(peak, running);
        releases.push(() => {
          running -= 1;
          resolve();
        });
      });
    const runs = Array.from({ length: 6 }, () => limit.run(task));
    await expect(runs[5]).rejects.toBeInstanceOf(WorkLimitFull);
    while (releases.length > 0 || running > 0) {
      releases.shift()?.();
      await new Promise((resolve) => setImmediate(resolve));
    }
    await Promise.all(runs.slice(0, 5));
    expect(peak).toBe(2);
    expect(limit.running).toBe(0);
  });

  it("answers 503 with Retry-After to logins beyond the queue instead of piling scrypt on the thread pool", async () => {
    const h = await startHarness("sqlite", { CAREHOOKS_CREDENTIAL_CHECKS: "1" });
    try {
      // 1 running + 16 waiting; the rest of 60 simultaneous logins are turned away.
      const answers = await Promise.all(
        Array.from({ length: 60 }, (_, i) =>
          h.app.inject({
            method: "POST",
            url: LOGIN,
            remoteAddress: `10.1.0.${i}`,
            payload: { client_id: `cli_flood${i}`, client_secret: "chs_wrong" },
          }),
        ),
      );
      const statuses = answers.map((a) => a.statusCode);
      expect(statuses.filter((s) => s === 401).length).toBeGreaterThanOrEqual(17);
      const refused = answers.filter((a) => a.statusCode === 503);
      expect(refused.length).toBeGreaterThan(0);
      expect(refused[0]?.json().error.code).toBe("SERVICE_UNAVAILABLE");
      expect(refused[0]?.headers["retry-after"]).toBe("1");
      expect(statuses.every((s) => s === 401 || s === 503)).toBe(true);
    } finally {
      await h.close();
    }
  });
});
