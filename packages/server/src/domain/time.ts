/** API resources show ISO-8601 UTC times to the second: `2026-11-28T23:40:10Z`. */
export function isoTime(ms: number): string {
  // toISOString always ends in ".sssZ".
  return `${new Date(ms).toISOString().slice(0, -5)}Z`;
}

export function isoTimeOrNull(ms: number | null): string | null {
  return ms === null ? null : isoTime(ms);
}

/** Parses an ISO-8601 time or Unix seconds given as a filter; undefined when it is neither. */
export function parseTimeFilter(text: string): number | undefined {
  if (/^\d{1,12}$/.test(text)) return Number(text) * 1000;
  const ms = Date.parse(text);
  return Number.isNaN(ms) || !/^\d{4}-\d{2}-\d{2}/.test(text) ? undefined : ms;
}
