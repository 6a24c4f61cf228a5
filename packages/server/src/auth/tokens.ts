/**
 * Access tokens: short-lived HS256 JWTs naming the client and its business.
 * They carry no scopes: every request looks the client up (in the cache that
 * every process drops it from when it changes), so a revocation or a scope
 * change takes effect within CAREHOOKS_CACHE_STALENESS in every API process.
 */
import { webcrypto } from "node:crypto";
import { errors as joseErrors, jwtVerify, SignJWT } from "jose";
import { BoundedMap } from "../domain/bounded-map.js";

const ISSUER = "carehooks";
/** Tokens whose signature was checked, kept until they expire: a client sends the same one for minutes. */
const VERIFIED_CAPACITY = 10_000;

export interface AccessClaims {
  readonly clientId: string;
  readonly businessId: string;
  /**
   * Narrows the client's scopes for this token only (a portal session's
   * read-only access); absent, the token has whatever the client holds.
   */
  readonly scopes?: readonly string[];
}

/** What a verified token says, with when it stops being valid. */
export interface VerifiedClaims extends AccessClaims {
  /** Milliseconds since the epoch. */
  readonly expiresAt: number;
}

export class TokenService {
  /** Imported once: importing the raw secret on every verify costs more than the HMAC itself. */
  readonly #key: Promise<webcrypto.CryptoKey>;
  readonly #verified = new BoundedMap<string, VerifiedClaims>(VERIFIED_CAPACITY);

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

  async issue(claims: AccessClaims, now = Date.now(), ttlMs = this.accessTtlMs): Promise<string> {
    const iat = Math.floor(now / 1000);
    return new SignJWT(
      claims.scopes ? { biz: claims.businessId, scp: claims.scopes.join(" ") } : { biz: claims.businessId },
    )
      .setProtectedHeader({ alg: "HS256", typ: "JWT" })
      .setIssuer(ISSUER)
      .setSubject(claims.clientId)
      .setIssuedAt(iat)
      .setExpirationTime(iat + Math.max(1, Math.round(ttlMs / 1000)))
      .sign(await this.#key);
  }

  /** The claims of a valid token, or undefined for anything else (bad signature, expired, malformed). */
  async verify(token: string, now = Date.now()): Promise<VerifiedClaims | undefined> {
    const checked = await this.check(token, now);
    return typeof checked === "string" ? undefined : checked;
  }

  /** The claims of a valid token, or why it is not: `expired` (well signed, past its exp) or `invalid`. */
  async check(token: string, now = Date.now()): Promise<VerifiedClaims | "expired" | "invalid"> {
    const known = this.#verified.get(token);
    if (known !== undefined) {
      if (now < known.expiresAt) return known;
      this.#verified.delete(token);
    }
    try {
      const { payload } = await jwtVerify(token, await this.#key, {
        algorithms: ["HS256"],
        issuer: ISSUER,
        currentDate: new Date(now),
      });
      if (typeof payload.sub !== "string" || typeof payload.biz !== "string" || typeof payload.exp !== "number") {
        return "invalid";
      }
      if (payload.scp !== undefined && typeof payload.scp !== "string") return "invalid";
      const expiresAt = payload.exp * 1000;
      const claims: VerifiedClaims =
        typeof payload.scp === "string"
          ? {
              clientId: payload.sub,
              businessId: payload.biz,
              scopes: payload.scp.split(" ").filter(Boolean),
              expiresAt,
            }
          : { clientId: payload.sub, businessId: payload.biz, expiresAt };
      this.#verified.set(token, claims);
      return claims;
    } catch (error) {
      if (error instanceof joseErrors.JWTExpired) return "expired";
      if (error instanceof joseErrors.JOSEError) return "invalid";
      throw error;
    }
  }
}
