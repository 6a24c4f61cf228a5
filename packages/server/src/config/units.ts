/** Parsers for the human units that configuration accepts: `15s`, `24h`, `1MiB`. */

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const SIZE_UNITS: Record<string, number> = { B: 1, KiB: 1024, MiB: 1024 * 1024, GiB: 1024 * 1024 * 1024 };

/** `15s` → 15000. A bare number is milliseconds. */
export function parseDuration(text: string): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$/.exec(text);
  if (!match) throw new Error(`"${text}" is not a duration (use ms, s, m, h or d, e.g. 15s)`);
  return Math.round(Number(match[1]) * (DURATION_UNITS[match[2] ?? "ms"] as number));
}

/** `1MiB` → 1048576. A bare number is bytes. */
export function parseSize(text: string): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*(B|KiB|MiB|GiB)?\s*$/.exec(text);
  if (!match) throw new Error(`"${text}" is not a size (use B, KiB, MiB or GiB, e.g. 1MiB)`);
  return Math.round(Number(match[1]) * (SIZE_UNITS[match[2] ?? "B"] as number));
}

export function parseBoolean(text: string): boolean {
  const value = text.trim().toLowerCase();
  if (["1", "true", "yes", "on"].includes(value)) return true;
  if (["0", "false", "no", "off", ""].includes(value)) return false;
  throw new Error(`"${text}" is not a boolean (use true or false)`);
}

export function parseInteger(text: string, min: number, max: number): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new Error(`"${text}" is not a whole number from ${min} to ${max}`);
  }
  return value;
}

export function parseList(text: string): string[] {
  return text
    .split(",")
    .map((item) => item.trim())
    .filter((item) => item !== "");
}
