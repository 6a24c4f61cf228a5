/** How integrator commands print: aligned columns for people, JSON for scripts (`--json`). */

export interface OutputOptions {
  readonly json?: boolean;
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value)}\n`);
}

/** Prints rows as aligned columns under a header; `json` prints the raw items instead. */
export function printTable<T>(
  options: OutputOptions,
  items: readonly T[],
  columns: readonly [header: string, cell: (item: T) => string][],
  empty = "nothing to show",
): void {
  if (options.json) {
    printJson(items);
    return;
  }
  if (items.length === 0) {
    process.stdout.write(`${empty}\n`);
    return;
  }
  const rows = [columns.map(([header]) => header), ...items.map((item) => columns.map(([, cell]) => cell(item)))];
  const widths = columns.map((_, index) => Math.max(...rows.map((row) => (row[index] ?? "").length)));
  for (const row of rows) {
    process.stdout.write(
      `${row.map((cell, index) => (index === row.length - 1 ? cell : cell.padEnd(widths[index] ?? 0))).join("  ")}\n`,
    );
  }
}

/** Prints a record as `key: value` lines, or JSON. */
export function printRecord(options: OutputOptions, record: Record<string, unknown>, text?: string): void {
  if (options.json) {
    printJson(record);
    return;
  }
  if (text !== undefined) {
    process.stdout.write(`${text}\n`);
    return;
  }
  const width = Math.max(...Object.keys(record).map((key) => key.length));
  for (const [key, value] of Object.entries(record)) {
    const shown =
      value === null || value === undefined ? "-" : typeof value === "object" ? JSON.stringify(value) : String(value);
    process.stdout.write(`${key.padEnd(width)}  ${shown}\n`);
  }
}
