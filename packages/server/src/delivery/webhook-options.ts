/**
 * A webhook's own request headers and retry schedule as the dispatcher uses
 * them, decoded once per stored value rather than once per attempt: the claim
 * returns them as stored (sealed JSON, JSON), and a webhook is sent to over
 * and over with the same values.
 */
import { BoundedMap } from "../domain/bounded-map.js";
import type { KeyBox } from "../domain/key-box.js";

/** Distinct stored values remembered; the oldest is forgotten first. */
const CAPACITY = 10_000;
const NONE: Readonly<Record<string, string>> = Object.freeze({});

export class WebhookOptions {
  readonly #keyBox: KeyBox;
  readonly #serverSchedule: readonly number[];
  readonly #headers = new BoundedMap<string, Readonly<Record<string, string>>>(CAPACITY);
  readonly #schedules = new BoundedMap<string, readonly number[]>(CAPACITY);

  constructor(keyBox: KeyBox, serverSchedule: readonly number[]) {
    this.#keyBox = keyBox;
    this.#serverSchedule = serverSchedule;
  }

  /** The custom headers of a sealed `subscription.headers`; none for null. Throws when it cannot be opened. */
  headersOf(sealed: string | null): Readonly<Record<string, string>> {
    if (sealed === null) return NONE;
    return this.#headers.getOrSet(sealed, () => Object.freeze(JSON.parse(this.#keyBox.open(sealed))));
  }

  /** The retry delays (ms) of a stored `subscription.retry_schedule`; the server's for null. */
  scheduleOf(stored: string | null): readonly number[] {
    if (stored === null) return this.#serverSchedule;
    return this.#schedules.getOrSet(stored, () => Object.freeze(JSON.parse(stored) as number[]));
  }
}
