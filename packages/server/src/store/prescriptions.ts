import type { DialectAdapter } from "./dialect/adapter.js";
import type { Db } from "./open.js";
import type { PrescriptionTable, PrescriptionVersionTable } from "./schema.js";

export type PrescriptionRow = PrescriptionTable;
export type PrescriptionVersionRow = PrescriptionVersionTable;

export async function findPrescription(
  db: Db,
  businessId: string,
  id: string,
  lock?: DialectAdapter["lockRows"],
): Promise<PrescriptionRow | undefined> {
  const query = db.selectFrom("prescription").selectAll().where("id", "=", id).where("business_id", "=", businessId);
  return (lock ? lock(query) : query).executeTakeFirst();
}

export async function findPrescriptionVersion(
  db: Db,
  prescriptionId: string,
  version: number,
): Promise<PrescriptionVersionRow | undefined> {
  return db
    .selectFrom("prescription_version")
    .selectAll()
    .where("prescription_id", "=", prescriptionId)
    .where("version", "=", version)
    .executeTakeFirst();
}

/**
 * Adds the next version. Conditional on the version the caller read, so two
 * concurrent revisions cannot both become version n + 1.
 */
export async function addPrescriptionVersion(
  db: Db,
  prescription: PrescriptionRow,
  version: PrescriptionVersionRow,
): Promise<boolean> {
  const result = await db
    .updateTable("prescription")
    .set({ current_version: version.version, updated_at: version.created_at, updated_by: version.created_by })
    .where("id", "=", prescription.id)
    .where("current_version", "=", version.version - 1)
    .executeTakeFirst();
  if (Number(result.numUpdatedRows) === 0) return false;
  await db.insertInto("prescription_version").values(version).execute();
  return true;
}
