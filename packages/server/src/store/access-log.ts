import { sql } from "kysely";
import type { Db } from "./open.js";
import type { AccessLogTable, AccessOutcome } from "./schema.js";

export type AccessLogRow = AccessLogTable;

export async function insertAccessLogs(db: Db, rows: readonly AccessLogRow[]): Promise<void> {
  if (rows.length > 0)
    await db
      .insertInto("access_log")
      .values([...rows])
      .execute();
}

export interface AccessLogFilter {
  readonly resource_type?: string | undefined;
  readonly resource_id?: string | undefined;
  readonly client_id?: string | undefined;
  readonly outcome?: AccessOutcome | undefined;
  readonly since?: number | undefined;
  readonly until?: number | undefined;
}

export async function listAccessLogs(
  db: Db,
  businessId: string,
  filter: AccessLogFilter,
  page: { after: string | undefined; limit: number },
): Promise<AccessLogRow[]> {
  let query = db.selectFrom("access_log").selectAll().where("business_id", "=", businessId);
  if (filter.resource_type !== undefined) query = query.where("resource_type", "=", filter.resource_type);
  if (filter.resource_id !== undefined) {
    const id = filter.resource_id;
    // A list read counts as a read of every id it returned.
    const pattern = `%"${id.replace(/[\\%_]/g, (c) => `\\${c}`)}"%`;
    query = query.where((eb) =>
      eb.or([eb("resource_id", "=", id), sql<boolean>`${eb.ref("resource_ids")} like ${pattern} escape '\\'`]),
    );
  }
  if (filter.client_id !== undefined) query = query.where("client_id", "=", filter.client_id);
  if (filter.outcome !== undefined) query = query.where("outcome", "=", filter.outcome);
  if (filter.since !== undefined) query = query.where("created_at", ">=", filter.since);
  if (filter.until !== undefined) query = query.where("created_at", "<", filter.until);
  if (page.after) query = query.where("id", ">", page.after);
  return query.orderBy("id").limit(page.limit).execute();
}
