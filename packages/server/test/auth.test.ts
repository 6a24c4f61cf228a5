import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { revokeApiClient } from "../src/store/api-clients.js";
import { dialects } from "./support/databases.js";
import { type Harness, startHarness, type Tenant } from "./support/harness.js";

const LOGIN = "/connect-auth/v1/account/login";
const REFRESH = "/connect-auth/v1/account/refresh";
const LIST = "/notification/v1/connect/webhook/subscriptions";

describe.each(dialects())("client-credential auth on %s", (dialect) => {
  let h: Harness;
  let tenant: Tenant;

  beforeAll(async () => {
    h = await startHarness(dialect, { CAREHOOKS_ACCESS_TOKEN_TTL: "10m", CAREHOOKS_REFRESH_TOKEN_TTL: "7d" });
    tenant = await h.tenant();
  });
  afterAll(async () => h?.close());

  const post = (url: string, payload: object) => h.app.inject({ method: "POST", url, payload });
  const list = (headers: Record<string, string>) => h.app.inject({ method: "GET", url: LIST, headers });

  it("logs in with client credentials, answering Eka's token shape", async () => {
    const response = await post(LOGIN, { client_id: tenant.clientId, client_secret: tenant.clientSecret });
    expect(response.statusCode).toBe(200);
    const body = response.json();
    // Eka's four fields, plus OAuth 2.0's `scope` (which Eka clients ignore) so a UI knows what to show.
    expect(Object.keys(body).sort()).toEqual([
      "access_token",
      "expires_in",
      "refresh_expires_in",
      "refresh_token",
      "scope",
    ]);
    expect(body.expires_in).toBe(600);
    expect(body.refresh_expires_in).toBe(7 * 86_400);
  });

  it("refuses wrong, unknown and malformed credentials with 401 or 400", async () => {
    const wrong = await post(LOGIN, { client_id: tenant.clientId, client_secret: "chs_wrong" });
    expect(wrong.statusCode).toBe(401);
    expect(wrong.json().error).toMatchObject({ code: "UNAUTHORIZED", message: "invalid client credentials" });
    expect((await post(LOGIN, { client_id: "cli_nobody", client_secret: "x" })).statusCode).toBe(401);
    expect((await post(LOGIN, { client_id: tenant.clientId })).statusCode).toBe(400);
  });

  it("accepts Authorization: Bearer and the legacy auth header", async () => {
    expect((await list({ authorization: `Bearer ${tenant.accessToken}` })).statusCode).toBe(200);
    expect((await list({ auth: tenant.accessToken })).statusCode).toBe(200);
  });

  it("answers 401 for a missing, malformed, forged or expired token", async () => {
    const missing = await list({});
    expect(missing.statusCode).toBe(401);
    expect(missing.json().error.code).toBe("UNAUTHORIZED");
    expect((await list({ authorization: "Basic abc" })).statusCode).toBe(401);
    expect((await list({ authorization: "Bearer not.a.jwt" })).statusCode).toBe(401);
    const [header, payload] = tenant.accessToken.split(".");
    expect((await list({ authorization: `Bearer ${header}.${payload}.forgedsignature` })).statusCode).toBe(401);
    const unsigned = `${Buffer.from('{"alg":"none","typ":"JWT"}').toString("base64url")}.${payload}.`;
    expect((await list({ authorization: `Bearer ${unsigned}` })).statusCode).toBe(401);

    const expired = await h.ctx.tokens.issue(
      { clientId: tenant.clientId, businessId: tenant.businessId },
      Date.now() - 11 * 60_000,
    );
    const response = await list({ authorization: `Bearer ${expired}` });
    expect(response.statusCode).toBe(401);
    expect(response.json().error.message).toMatch(/has expired: refresh it/);
    // RFC 6750: every 401 names the scheme; a token that was sent but cannot be used says why.
    expect(response.headers["www-authenticate"]).toBe(
      'Bearer realm="carehooks", error="invalid_token", error_description="the access token expired"',
    );
    expect(missing.headers["www-authenticate"]).toBe('Bearer realm="carehooks"');
    const forged = await list({ authorization: `Bearer ${header}.${payload}.forgedsignature` });
    expect(forged.json().error.message).toMatch(/is invalid/);
    expect(forged.headers["www-authenticate"]).toMatch(
      /error="invalid_token", error_description="the access token is invalid"/,
    );
  });

  it("rotates refresh tokens, and a reused one revokes its family", async () => {
    const first = await post(REFRESH, { refresh_token: tenant.refreshToken });
    expect(first.statusCode).toBe(200);
    const pair = first.json();
    expect(pair.refresh_token).not.toBe(tenant.refreshToken);
    expect((await list({ authorization: `Bearer ${pair.access_token}` })).statusCode).toBe(200);

    const reuse = await post(REFRESH, { refresh_token: tenant.refreshToken });
    expect(reuse.statusCode).toBe(401);
    expect(reuse.json().error.message).toMatch(/already used/);
    // The reuse revoked the whole family, including the token issued after it.
    expect((await post(REFRESH, { refresh_token: pair.refresh_token })).statusCode).toBe(401);
    expect((await post(REFRESH, { refresh_token: "chr_unknown" })).statusCode).toBe(401);
  });

  it("lets only one of two concurrent refreshes with one token win", async () => {
    const fresh = await tenant.colleague();
    const answers = await Promise.all([
      post(REFRESH, { refresh_token: fresh.refreshToken }),
      post(REFRESH, { refresh_token: fresh.refreshToken }),
    ]);
    expect(answers.map((a) => a.statusCode).sort()).toEqual([200, 401]);
    // The loser presented a spent token: that is reuse, so the winner's new token is revoked too.
    const winner = answers.find((a) => a.statusCode === 200)?.json();
    expect((await post(REFRESH, { refresh_token: winner.refresh_token })).statusCode).toBe(401);
  });

  it("answers 400, not 500, for NUL bytes and malformed ids anywhere", async () => {
    expect((await post(LOGIN, { client_id: "a\u0000b", client_secret: "x" })).statusCode).toBe(400);
    expect((await post(REFRESH, { refresh_token: "chr_\u0000" })).statusCode).toBe(400);
    const headers = { authorization: `Bearer ${tenant.accessToken}` };
    for (const url of [`${LIST}/%00`, `${LIST}/a%2Fb`, `${LIST}/${"x".repeat(100)}`]) {
      const response = await h.app.inject({ method: "GET", url, headers });
      expect(response.statusCode, url).toBe(400);
      expect(response.json().error.code).toBe("INVALID_REQUEST");
    }
    const bad = await h.app.inject({ method: "GET", url: `${LIST}/%ZZ`, headers });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error).toMatchObject({ code: "INVALID_REQUEST", request_id: expect.stringMatching(/^req_/) });
    const nul = await h.app.inject({
      method: "POST",
      url: "/dr/v1/business/appointments",
      headers,
      payload: {
        doctor_id: "d",
        patient_id: "p",
        clinic_id: "c",
        start_time: 1_800_000_000,
        end_time: 1_800_000_600,
        notes: "a\u0000b",
      },
    });
    expect(nul.statusCode).toBe(400);
  });

  it("accepts 'auth: Bearer <token>' and falls back to auth when Authorization is not a bearer token", async () => {
    expect((await list({ auth: `Bearer ${tenant.accessToken}` })).statusCode).toBe(200);
    expect((await list({ authorization: "Basic Zm9vOmJhcg==", auth: tenant.accessToken })).statusCode).toBe(200);
  });

  it("stops a revoked client's tokens at once", async () => {
    const doomed = await tenant.colleague();
    expect((await list({ authorization: `Bearer ${doomed.accessToken}` })).statusCode).toBe(200);
    await revokeApiClient(h.ctx.adapter, doomed.clientId);
    const after = await list({ authorization: `Bearer ${doomed.accessToken}` });
    expect(after.statusCode).toBe(401);
    expect(after.json().error.message).toMatch(/revoked/);
    expect((await post(REFRESH, { refresh_token: doomed.refreshToken })).statusCode).toBe(401);
    expect((await post(LOGIN, { client_id: doomed.clientId, client_secret: doomed.clientSecret })).statusCode).toBe(
      401,
    );
  });
});
