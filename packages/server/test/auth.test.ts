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
    expect(Object.keys(body).sort()).toEqual(["access_token", "expires_in", "refresh_expires_in", "refresh_token"]);
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
    expect(response.json().error.message).toMatch(/expired/);
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
  });

  it("stops a revoked client's tokens at once", async () => {
    const doomed = await tenant.colleague();
    expect((await list({ authorization: `Bearer ${doomed.accessToken}` })).statusCode).toBe(200);
    await revokeApiClient(h.ctx.db, doomed.clientId);
    const after = await list({ authorization: `Bearer ${doomed.accessToken}` });
    expect(after.statusCode).toBe(401);
    expect(after.json().error.message).toMatch(/revoked/);
    expect((await post(REFRESH, { refresh_token: doomed.refreshToken })).statusCode).toBe(401);
    expect((await post(LOGIN, { client_id: doomed.clientId, client_secret: doomed.clientSecret })).statusCode).toBe(
      401,
    );
  });
});
