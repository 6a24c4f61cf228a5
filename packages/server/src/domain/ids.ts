/**
 * Prefixed, time-sortable ids: `evt_01JD3…`. The part after the prefix is 26
 * Crockford base32 characters: 48 bits of milliseconds, then 80 bits that are
 * random for the first id of a millisecond and incremented after it, so ids
 * made by one process sort in creation order and can serve as cursors.
 */
import { randomFillSync } from "node:crypto";

export const ID_PREFIXES = {
  business: "biz",
  client: "cli",
  subscription: "wh",
  appointment: "apt",
  prescription: "rx",
  event: "evt",
  delivery: "dlv",
  attempt: "att",
  task: "task",
  request: "req",
  accessLog: "log",
  portalSession: "ps",
} as const;

export type IdKind = keyof typeof ID_PREFIXES;

const ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const RANDOM_BYTES = 10;

let lastTime = -1;
const lastRandom = Buffer.alloc(RANDOM_BYTES);

/** Random bytes are drawn a pool at a time: one call per id was a visible cost on the hot path. */
const pool = Buffer.alloc(4096);
let poolOffset = pool.length;

function nextRandom(now: number): Buffer {
  if (now > lastTime) {
    lastTime = now;
    if (poolOffset + RANDOM_BYTES > pool.length) {
      randomFillSync(pool);
      poolOffset = 0;
    }
    pool.copy(lastRandom, 0, poolOffset, poolOffset + RANDOM_BYTES);
    poolOffset += RANDOM_BYTES;
    lastRandom[0] = (lastRandom[0] as number) & 0x7f; // headroom so increments do not overflow
    return lastRandom;
  }
  for (let i = RANDOM_BYTES - 1; i >= 0; i--) {
    const byte = ((lastRandom[i] as number) + 1) & 0xff;
    lastRandom[i] = byte;
    if (byte !== 0) break;
  }
  return lastRandom;
}

/** 10 characters of time, then the random bytes five bits at a time, most significant first. */
function encode(time: number, random: Buffer): string {
  let out = "";
  let t = time;
  for (let i = 0; i < 10; i++) {
    out = ALPHABET[t % 32] + out;
    t = Math.floor(t / 32);
  }
  let bits = 0;
  let held = 0;
  for (const byte of random) {
    bits = ((bits << 8) | byte) & 0xfff;
    held += 8;
    while (held >= 5) {
      held -= 5;
      out += ALPHABET[(bits >> held) & 31];
    }
  }
  return out;
}

export function newId(kind: IdKind, now: number = Date.now()): string {
  const time = Math.max(now, lastTime); // a clock that steps back must not break the order
  return `${ID_PREFIXES[kind]}_${encode(time, nextRandom(time))}`;
}

/**
 * A new id and the time it carries: `now`, or the last id's time while this process's clock is
 * behind it (it stepped back). A row whose time is its id's sorts the same by either, so an index
 * on the id serves its scans by time (events: store/events.ts).
 */
export function newTimedId(kind: IdKind, now: number = Date.now()): { readonly id: string; readonly at: number } {
  const at = Math.max(now, lastTime);
  return { id: newId(kind, at), at };
}

/** The smallest id of `kind` made at `time`: a lower bound for "made at or after" on an id index. */
export function firstIdAt(kind: IdKind, time: number): string {
  return `${ID_PREFIXES[kind]}_${encode(Math.max(0, Math.floor(time)), Buffer.alloc(RANDOM_BYTES))}`;
}

const ID_BODY = /^[0-9A-HJKMNP-TV-Z]{26}$/;

/** True when `id` has the prefix of `kind` and a well-formed body. */
export function isId(kind: IdKind, id: string): boolean {
  const prefix = `${ID_PREFIXES[kind]}_`;
  return id.startsWith(prefix) && ID_BODY.test(id.slice(prefix.length));
}
