// Small numeric helpers.

/** Nearest-rank percentile of an ascending-sorted array. */
export function percentile(sorted, p) {
  if (sorted.length === 0) return undefined;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))];
}

export function summarize(values) {
  const sorted = [...values].sort((a, b) => a - b);
  if (sorted.length === 0) return { n: 0 };
  const sum = sorted.reduce((a, b) => a + b, 0);
  return {
    n: sorted.length,
    min: round(sorted[0], 2),
    p50: round(percentile(sorted, 50), 2),
    p90: round(percentile(sorted, 90), 2),
    p99: round(percentile(sorted, 99), 2),
    max: round(sorted[sorted.length - 1], 2),
    mean: round(sum / sorted.length, 2),
  };
}

export function round(x, digits = 0) {
  if (x === undefined || x === null || Number.isNaN(x)) return x;
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

/**
 * Milliseconds on the machine's monotonic clock (CLOCK_MONOTONIC: one clock for every process), so
 * times taken in the bench and in its child processes compare. Wall-clock times
 * (performance.timeOrigin + performance.now()) need not: each process fixes its origin from the wall
 * clock when it starts. In one run every commit→receipt latency came out several milliseconds
 * negative, in both dialects (p50 −5.2 ms at 500/s), and the same build measured again was positive.
 */
export const now = () => Number(process.hrtime.bigint()) / 1e6;

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Runs fn(i) for i in [0, n) with at most `concurrency` calls outstanding. */
export async function runPool(n, concurrency, fn) {
  const results = new Array(n);
  const errors = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, n) }, async () => {
      while (next < n) {
        const i = next++;
        try {
          results[i] = await fn(i);
        } catch (error) {
          errors.push(String(error?.message ?? error));
        }
      }
    }),
  );
  return { results: results.filter(Boolean), errors };
}

/**
 * JSON text laid out the way the repository's formatter (biome) lays it out, so a results file
 * passes `npm run lint`: objects expanded, arrays of primitives on one line when they fit, and
 * arrays of numbers that do not fit filling their lines.
 */
export function formatJson(value, width = 120) {
  // `used`: characters already on the line before the value (indentation and key)
  const render = (v, indent, used) => {
    if (v === null || typeof v !== "object") return JSON.stringify(v) ?? "null";
    const pad = "  ".repeat(indent + 1);
    const end = "  ".repeat(indent);
    if (Array.isArray(v)) {
      if (v.length === 0) return "[]";
      if (v.every((x) => x === null || typeof x !== "object")) {
        const flat = `[${v.map((x) => JSON.stringify(x) ?? "null").join(", ")}]`;
        if (used + flat.length + 1 <= width) return flat;
      }
      // numbers fill their lines, as the formatter (biome) lays them out
      if (v.every((x) => typeof x === "number")) {
        return `[\n${fill(
          v.map((x) => JSON.stringify(x) ?? "null"),
          pad,
          width,
        )}\n${end}]`;
      }
      return `[\n${v.map((x) => pad + render(x, indent + 1, pad.length)).join(",\n")}\n${end}]`;
    }
    const entries = Object.entries(v).filter(([, x]) => x !== undefined);
    if (entries.length === 0) return "{}";
    const line = ([k, x]) => {
      const head = `${pad}${JSON.stringify(k)}: `;
      return head + render(x, indent + 1, head.length);
    };
    return `{\n${entries.map(line).join(",\n")}\n${end}}`;
  };
  return `${render(value, 0, 0)}\n`;
}

/** Items after `pad`, as many to a line as fit in `width` with their commas. */
function fill(items, pad, width) {
  const lines = [];
  let line = "";
  items.forEach((item, i) => {
    const text = i < items.length - 1 ? `${item},` : item;
    if (line !== "" && pad.length + line.length + 1 + text.length > width) {
      lines.push(pad + line);
      line = "";
    }
    line = line === "" ? text : `${line} ${text}`;
  });
  lines.push(pad + line);
  return lines.join("\n");
}
