/** Pure checks of clinic input that JSON Schema cannot express with a clear message. */
import { invalidRequest } from "./errors.js";

/** Unix seconds (an integer) or an ISO-8601 time with a zone → milliseconds. */
export function timeInput(field: string, value: number | string): number {
  if (typeof value === "number") {
    if (!Number.isInteger(value) || value < 0 || value > 253_402_300_799) {
      throw invalidRequest(`${field} must be Unix seconds or an ISO-8601 time`);
    }
    return value * 1000;
  }
  const ms = Date.parse(value);
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/.test(value) || Number.isNaN(ms)) {
    throw invalidRequest(`${field} must be Unix seconds or an ISO-8601 time with a zone, like 2026-11-28T09:30:00Z`);
  }
  return ms;
}

export function checkTimeRange(start: number, end: number): void {
  if (end <= start) throw invalidRequest("end_time must be after start_time");
}

type Item = Record<string, unknown> & { resource_type: string };

/** Fields each kind of prescription_details item takes; the first list is required. */
const ITEM_FIELDS: Record<string, { required: string[]; optional: string[] }> = {
  medicationrequest: {
    required: ["drug_name"],
    optional: ["drug_id", "dose", "frequency", "duration", "route", "timing", "instructions"],
  },
  condition: { required: ["name"], optional: ["code", "status", "since", "notes"] },
  advices: { required: ["text"], optional: [] },
  vitals: { required: ["name", "value"], optional: ["unit", "recorded_at"] },
  follow_up: { required: [], optional: ["date", "days", "notes"] },
  notes: { required: ["text"], optional: [] },
};

export const PRESCRIPTION_ITEM_TYPES = Object.keys(ITEM_FIELDS);

export function checkPrescriptionDetails(items: readonly Item[]): void {
  items.forEach((item, index) => {
    const where = `prescription_details[${index}]`;
    const fields = ITEM_FIELDS[item.resource_type];
    if (!fields) throw invalidRequest(`${where}.resource_type must be one of ${PRESCRIPTION_ITEM_TYPES.join(", ")}`);
    for (const name of fields.required) {
      if (item[name] === undefined || item[name] === null || item[name] === "") {
        throw invalidRequest(`${where} (${item.resource_type}) is missing "${name}"`);
      }
    }
    const known = new Set(["resource_type", ...fields.required, ...fields.optional]);
    const unknown = Object.keys(item).find((name) => !known.has(name));
    if (unknown) throw invalidRequest(`${where} (${item.resource_type}) has unknown field "${unknown}"`);
    for (const [name, value] of Object.entries(item)) {
      if (value !== null && typeof value === "object")
        throw invalidRequest(`${where}.${name} must be a string or a number`);
    }
  });
}
