/** The rule a subscription's `signing_key` must meet, and the keys carehooks generates. */
import { randomBytes } from "node:crypto";

const PRINTABLE = /^[\x21-\x7e]+$/;

/** Returns why the key is refused, or undefined when it is acceptable. */
export function signingKeyProblem(key: string): string | undefined {
  if (key.length < 16 || key.length > 256) return "signing_key must be 16 to 256 characters";
  if (!PRINTABLE.test(key)) return "signing_key must be printable ASCII without spaces";
  if (key.startsWith("whsec_")) {
    const encoded = key.slice("whsec_".length);
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(encoded) || encoded.length % 4 !== 0) {
      return "a signing_key starting whsec_ must be followed by standard base64";
    }
    const bytes = Buffer.from(encoded, "base64").length;
    if (bytes < 24 || bytes > 64) return `a whsec_ signing_key must encode 24 to 64 bytes, not ${bytes}`;
  }
  return undefined;
}

/** A Standard Webhooks key: `whsec_` and 32 random bytes in base64, as Svix and the SDK expect. */
export function generateSigningKey(): string {
  return `whsec_${randomBytes(32).toString("base64")}`;
}
