/**
 * Access tokens: short-lived HS256 JWTs naming the client and its business.
 * They carry no scopes: every request reloads the client, so a revocation or a
 * scope change takes effect at once in every API process.
 */
import { webcrypto } from "node:crypto";
import { errors as joseErrors, jwtVerify, SignJWT } from "jose";

const ISSUER = "carehooks";

export interface AccessClaims {
  readonly clientId: string;
  readonly businessId: string;
}

export class TokenService {
  /** Imported once: importing the raw secret on every verify costs more than the HMAC itself. */
  readonly #key: Promise<webcrypto.CryptoKey>;

  constructor(
    secret: string,
    readonly accessTtlMs: number,
  ) {
    this.#key = webcrypto.subtle.importKey(
      "raw",
      new TextEncoder().encode(secret),
      { name: "HMAC", hash: "SHA-256" },
      false,
      ["sign", "verify"],
    );
  }

  async issue(claims: AccessClaims, now = Date.now()): Promise<string> {
    const iat = Math.floor(now / 1000);
    return new SignJWT({ biz: claims.businessId })
      .setProtectedHeader({ alg: "HS256", typ: "JWT" })
      .setIssuer(ISSUER)
      .setSubject(claims.clientId)
      .setIssuedAt(iat)
      .setExpirationTime(iat + Math.max(1, Math.round(this.accessTtlMs / 1000)))
      .sign(await this.#key);
  }

  /** The claims of a valid token, or undefined for anything else (bad signature, expired, malformed). */
  async verify(token: string, now = Date.now()): Promise<AccessClaims | undefined> {
    try {
      const { payload } = await jwtVerify(token, await this.#key, {
        algorithms: ["HS256"],
        issuer: ISSUER,
        currentDate: new Date(now),
      });
      if (typeof payload.sub !== "string" || typeof payload.biz !== "string") return undefined;
      return { clientId: payload.sub, businessId: payload.biz };
    } catch (error) {
      if (error instanceof joseErrors.JOSEError) return undefined;
      throw error;
    }
  }
}
