/**
 * Encrypts secrets at rest (signing keys) with AES-256-GCM under the master
 * key. A sealed value reads `v1.<key id>.<base64url(iv | tag | ciphertext)>`:
 * the key id names the master key, so the master key can be rotated later by
 * re-sealing values whose id is the old one.
 */
import { createCipheriv, createDecipheriv, createHash, createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { BoundedMap } from "./bounded-map.js";

const IV_BYTES = 12;
const TAG_BYTES = 16;
/** Opened values kept in memory: every attempt signs with its subscription's key. */
const OPENED_CAPACITY = 10_000;

export class KeyBox {
  readonly keyId: string;
  readonly #key: Buffer;
  readonly #opened = new BoundedMap<string, string>(OPENED_CAPACITY);
  #names: Buffer | undefined;

  constructor(masterKeyHex: string) {
    if (!/^[0-9a-fA-F]{64}$/.test(masterKeyHex)) throw new Error("the master key must be 64 hex characters");
    this.#key = Buffer.from(masterKeyHex, "hex");
    this.keyId = createHash("sha256").update(this.#key).digest("hex").slice(0, 12);
  }

  seal(plaintext: string): string {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv("aes-256-gcm", this.#key, iv);
    cipher.setAAD(Buffer.from(this.keyId));
    const body = Buffer.concat([cipher.update(plaintext, "utf8"), cipher.final()]);
    const sealed = Buffer.concat([iv, cipher.getAuthTag(), body]).toString("base64url");
    return `v1.${this.keyId}.${sealed}`;
  }

  /** The plaintext of a sealed value; throws when it was not sealed by this master key or was altered. */
  open(sealed: string): string {
    return this.#opened.getOrSet(sealed, () => this.#decrypt(sealed));
  }

  #decrypt(sealed: string): string {
    const [version, keyId, payload] = sealed.split(".");
    if (version !== "v1" || payload === undefined) throw new Error("not a sealed value");
    if (keyId !== this.keyId) throw new Error(`sealed under master key ${keyId}, not the current ${this.keyId}`);
    const raw = Buffer.from(payload, "base64url");
    const decipher = createDecipheriv("aes-256-gcm", this.#key, raw.subarray(0, IV_BYTES));
    decipher.setAAD(Buffer.from(this.keyId));
    decipher.setAuthTag(raw.subarray(IV_BYTES, IV_BYTES + TAG_BYTES));
    return Buffer.concat([decipher.update(raw.subarray(IV_BYTES + TAG_BYTES)), decipher.final()]).toString("utf8");
  }

  /**
   * 16 hex digits that name `secret` in this installation (a signing key in
   * the delivery log): a MAC under a key derived from the master key, so the
   * name of a weak key cannot be looked up in a table made for every
   * installation, nor tested without the master key.
   */
  fingerprint(secret: string): string {
    this.#names ??= createHmac("sha256", this.#key).update("carehooks key names").digest();
    return createHmac("sha256", this.#names).update(secret, "utf8").digest("hex").slice(0, 16);
  }

  /**
   * A value stored in the database at set-up: a process started with another
   * master key computes a different one and refuses to start.
   */
  checkValue(): string {
    return `${this.keyId}.${createHmac("sha256", this.#key).update("carehooks master key check").digest("hex")}`;
  }

  matches(checkValue: string): boolean {
    const mine = Buffer.from(this.checkValue());
    const theirs = Buffer.from(checkValue);
    return mine.length === theirs.length && timingSafeEqual(mine, theirs);
  }
}

export function generateMasterKey(): string {
  return randomBytes(32).toString("hex");
}
