/**
 * A strict reader of the Prometheus text exposition format (version 0.0.4),
 * for tests that must tell a scrape Prometheus would reject: a family
 * declared twice, a sample without its family's `# TYPE` before it, a family
 * split in two, a series given twice, or a line that is not a comment nor a
 * sample.
 */

export interface Family {
  readonly type: string;
  /** Every sample line of the family, by its full name and labels: `name{a="1"}` -> value. */
  readonly samples: Map<string, number>;
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*",?)*\})? (\S+)$/;
const TYPE = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$/;
const SUFFIXES: Record<string, readonly string[]> = {
  histogram: ["_bucket", "_sum", "_count"],
  summary: ["_sum", "_count"],
};

/** The families of a scrape by name; throws on anything a Prometheus server would refuse. */
export function parseExposition(text: string): Map<string, Family> {
  const families = new Map<string, Family>();
  let current: { name: string; family: Family } | undefined;
  for (const [index, line] of text.split("\n").entries()) {
    const where = `line ${index + 1}: ${line}`;
    if (line === "" || (line.startsWith("#") && !line.startsWith("# TYPE "))) continue;
    const type = TYPE.exec(line);
    if (type) {
      const name = type[1] as string;
      if (families.has(name)) throw new Error(`family ${name} declared twice (${where})`);
      current = { name, family: { type: type[2] as string, samples: new Map() } };
      families.set(name, current.family);
      continue;
    }
    const sample = SAMPLE.exec(line);
    if (!sample) throw new Error(`not a sample (${where})`);
    const name = sample[1] as string;
    const suffixes = current ? (SUFFIXES[current.family.type] ?? []) : [];
    const belongs = current && (name === current.name || suffixes.some((suffix) => name === current?.name + suffix));
    if (!current || !belongs) throw new Error(`sample outside its family's block (${where})`);
    const value = sampleValue(sample[3] as string);
    if (value === undefined) throw new Error(`bad value (${where})`);
    const key = `${name}${sample[2] ?? ""}`;
    if (current.family.samples.has(key)) throw new Error(`sample given twice (${where})`);
    current.family.samples.set(key, value);
  }
  return families;
}

/** A sample's value as Prometheus reads it: a float, or Inf and NaN in any case (prom-client writes `Nan`). */
function sampleValue(text: string): number | undefined {
  const special = /^([+-]?)(inf|nan)$/i.exec(text);
  if (special) {
    if ((special[2] as string).toLowerCase() === "nan") return Number.NaN;
    return special[1] === "-" ? Number.NEGATIVE_INFINITY : Number.POSITIVE_INFINITY;
  }
  const value = Number(text);
  return text.trim() === "" || Number.isNaN(value) ? undefined : value;
}
