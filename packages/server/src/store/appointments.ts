import type { Updateable } from "kysely";
import type { DialectAdapter } from "./dialect/adapter.js";
import type { Db } from "./open.js";
import type { AppointmentTable } from "./schema.js";

export type AppointmentRow = AppointmentTable;

/** The appointment of the business; with `lock` (a dialect's lockRows), held until the transaction ends. */
export async function findAppointment(
  db: Db,
  businessId: string,
  id: string,
  lock?: DialectAdapter["lockRows"],
): Promise<AppointmentRow | undefined> {
  const query = db.selectFrom("appointment").selectAll().where("id", "=", id).where("business_id", "=", businessId);
  return (lock ? lock(query) : query).executeTakeFirst();
}

export async function updateAppointment(
  db: Db,
  businessId: string,
  id: string,
  change: Updateable<AppointmentTable>,
): Promise<void> {
  await db.updateTable("appointment").set(change).where("id", "=", id).where("business_id", "=", businessId).execute();
}

export interface AppointmentFilter {
  readonly clinic_id?: string | undefined;
  readonly doctor_id?: string | undefined;
  readonly patient_id?: string | undefined;
  readonly status?: string | undefined;
  /** start_time at or after (ms) */
  readonly from?: number | undefined;
  /** start_time before (ms) */
  readonly to?: number | undefined;
}

export async function listAppointments(
  db: Db,
  businessId: string,
  filter: AppointmentFilter,
  page: { after: string | undefined; limit: number },
): Promise<AppointmentRow[]> {
  let query = db.selectFrom("appointment").selectAll().where("business_id", "=", businessId);
  for (const column of ["clinic_id", "doctor_id", "patient_id", "status"] as const) {
    const value = filter[column];
    if (value !== undefined) query = query.where(column, "=", value);
  }
  if (filter.from !== undefined) query = query.where("start_time", ">=", filter.from);
  if (filter.to !== undefined) query = query.where("start_time", "<", filter.to);
  if (page.after) query = query.where("id", ">", page.after);
  return query.orderBy("id").limit(page.limit).execute();
}
