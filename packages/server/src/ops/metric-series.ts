/**
 * The series of one metric, found by their label values. A metric declares its
 * label names up front, so the exposition text of a series' labels (names
 * sorted, values escaped) is built once, when the series first appears: an
 * observation on the hot path is one Map lookup per label, with no sort,
 * regex or string building.
 */

export type Labels<L extends string> = Readonly<Record<L, string>>;

/** What every series keeps: its labels as exposition text (`a="1",b="2"`, or "" without labels). */
export interface Series {
  readonly labels: string;
}

/** One level of the lookup tree per label name, in sorted order; the last level holds the series. */
type Level = Map<string, unknown>;

export class SeriesTable<L extends string, S extends Series> {
  readonly #names: readonly L[];
  readonly #make: (labels: string) => S;
  readonly #root: Level = new Map();
  readonly #all: S[] = [];
  #unlabelled: S | undefined;

  constructor(names: readonly L[], make: (labels: string) => S) {
    // Sorted once here, as the exposition order the scrape has always shown.
    this.#names = [...names].sort((a, b) => a.localeCompare(b));
    this.#make = make;
  }

  get(labels: Labels<L>): S {
    const names = this.#names;
    const last = names.length - 1;
    if (last < 0) {
      this.#unlabelled ??= this.#add(labels);
      return this.#unlabelled;
    }
    let level = this.#root;
    for (let index = 0; index < last; index += 1) {
      const value = labels[names[index] as L];
      let next = level.get(value) as Level | undefined;
      if (next === undefined) {
        next = new Map();
        level.set(value, next);
      }
      level = next;
    }
    const value = labels[names[last] as L];
    let series = level.get(value) as S | undefined;
    if (series === undefined) {
      series = this.#add(labels);
      level.set(value, series);
    }
    return series;
  }

  /** Every series, in the order they first appeared. */
  all(): readonly S[] {
    return this.#all;
  }

  #add(labels: Labels<L>): S {
    const text = this.#names.map((name) => `${name}="${escapeValue(String(labels[name]))}"`).join(",");
    const series = this.#make(text);
    this.#all.push(series);
    return series;
  }
}

function escapeValue(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}
