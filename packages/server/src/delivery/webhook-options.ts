/**
 * What every attempt to one webhook sends alike: its signing keys opened, its
 * own request headers, its retry schedule and what the delivery log rebuilds
 * its headers from. A claim returns them as stored (sealed keys, sealed
 * JSON, JSON) in one object per webhook, shared by its deliveries, and a
 * webhook is sent to over and over with the same values, so they are worked
 * out once per webhook and stored value, not once per attempt: an attempt
 * makes one lookup by webhook id, then finds the claim's object it was worked
 * out from, or compares a few strings that show nothing changed.
 */
import { BoundedMap } from "../domain/bounded-map.js";
import type { KeyBox } from "../domain/key-box.js";
import { encodeRequestMeta, keyIdOf } from "../domain/request-headers.js";
import { type KeyOverlap, previousKeyStillSigning } from "../domain/signing-key.js";
import { version } from "../version.js";

/** Webhooks remembered; the one used longest ago is forgotten first. */
const CAPACITY = 10_000;
const NONE: Readonly<Record<string, string>> = Object.freeze({});

/** A webhook's settings as the claim returns them (store/queue/claim.ts, ClaimedWebhook). */
export interface StoredOptions extends KeyOverlap {
  /** The webhook's (subscription's) id. */
  readonly id: string;
  readonly signing_key: string | null;
  /** Sealed JSON of its custom headers, or null. */
  readonly headers: string | null;
  /** JSON list of ms, or null for the server's schedule. */
  readonly retry_schedule: string | null;
}

/** The keys that sign an attempt, opened, new key first, and the RequestMeta text naming them. */
export interface Signing {
  readonly keys: readonly string[];
  readonly meta: string;
}

export interface SendOptions {
  /** The webhook's own headers. */
  readonly custom: Readonly<Record<string, string>>;
  /** Retry delays in ms. */
  readonly schedule: readonly number[];
  /** The signing of an attempt at `now` (ms): the replaced key signs too until its overlap ends. */
  signingAt(now: number): Signing;
}

interface Entry extends SendOptions {
  /** The values it was worked out from: the last claim's object that had them. */
  stored: StoredOptions;
}

export class WebhookOptions {
  readonly #keyBox: KeyBox;
  readonly #serverSchedule: readonly number[];
  readonly #known = new BoundedMap<string, Entry>(CAPACITY);

  constructor(keyBox: KeyBox, serverSchedule: readonly number[]) {
    this.#keyBox = keyBox;
    this.#serverSchedule = serverSchedule;
  }

  /**
   * The options of the webhook `row` belongs to, for an attempt at `now` (ms). Throws when a key
   * or the headers cannot be opened.
   */
  of(row: StoredOptions, now: number): SendOptions {
    const known = this.#known.get(row.id);
    if (known?.stored === row) return known;
    if (known !== undefined && sameStored(known.stored, row)) {
      // A claim shares one object among a webhook's deliveries: the next of them is found by identity.
      known.stored = row;
      return known;
    }
    const entry = this.#work(row, now);
    this.#known.set(row.id, entry);
    return entry;
  }

  /**
   * The retry schedule alone (for an attempt whose options could not be opened too): the server's
   * for none, and for a stored value that is not a list of numbers, which the API never writes, so
   * that a damaged row is retried on a schedule rather than never recorded.
   */
  scheduleOf(row: StoredOptions): readonly number[] {
    if (row.retry_schedule === null) return this.#serverSchedule;
    try {
      const schedule: unknown = JSON.parse(row.retry_schedule);
      if (Array.isArray(schedule) && schedule.every((ms) => typeof ms === "number")) return schedule;
    } catch {}
    return this.#serverSchedule;
  }

  #work(row: StoredOptions, now: number): Entry {
    const keyBox = this.#keyBox;
    const custom: Readonly<Record<string, string>> =
      row.headers === null ? NONE : Object.freeze(JSON.parse(keyBox.open(row.headers)));
    const headerNames = Object.keys(custom);
    const signing = (keys: string[]): Signing => ({
      keys,
      meta: encodeRequestMeta({ version, keyIds: keys.map((key) => keyIdOf(key, keyBox)), headerNames }),
    });
    const current = row.signing_key ? [keyBox.open(row.signing_key)] : [];
    const alone = signing(current);
    // The replaced key, opened only if its overlap has not ended at `now`; signingAt leaves it out once it has.
    const previous = previousKeyStillSigning(row, keyBox, now);
    const both = previous === null ? alone : signing([...current, previous]);
    const previousUntil = Number(row.previous_key_expires_at ?? 0);
    return {
      stored: row,
      custom,
      schedule: this.scheduleOf(row),
      signingAt: (now) => (previousUntil > now ? both : alone),
    };
  }
}

function sameStored(a: StoredOptions, b: StoredOptions): boolean {
  return (
    a.signing_key === b.signing_key &&
    a.previous_signing_key === b.previous_signing_key &&
    Number(a.previous_key_expires_at) === Number(b.previous_key_expires_at) &&
    a.headers === b.headers &&
    a.retry_schedule === b.retry_schedule
  );
}
