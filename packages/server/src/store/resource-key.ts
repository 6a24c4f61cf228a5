/** The key per-resource ordering orders deliveries by, in code and in SQL. */
import { sql } from "kysely";
import type { EventTable } from "./schema.js";

/** What per-resource ordering orders a delivery by: its event's resource. */
export function resourceKeyOf(event: Pick<EventTable, "resource_type" | "resource_id">): string {
  return `${event.resource_type}:${event.resource_id}`;
}

/** resourceKeyOf in SQL, of an event row named `e`: for deliveries keyed after they were written. */
export const EVENT_RESOURCE_KEY = sql<string>`e.resource_type || ':' || e.resource_id`;
