import type { Updateable } from "kysely";
import type { Db } from "./open.js";
import type { TaskState, TaskTable } from "./schema.js";

export type TaskRow = Omit<TaskTable, "total" | "done"> & { total: number; done: number; state: TaskState };

export async function insertTask(db: Db, row: TaskRow): Promise<void> {
  await db.insertInto("task").values(row).execute();
}

export async function findTask(db: Db, businessId: string, id: string): Promise<TaskRow | undefined> {
  return db
    .selectFrom("task")
    .selectAll()
    .where("id", "=", id)
    .where("business_id", "=", businessId)
    .executeTakeFirst();
}

export async function updateTask(db: Db, id: string, change: Updateable<TaskTable>): Promise<void> {
  await db.updateTable("task").set(change).where("id", "=", id).execute();
}

/** Tasks a process left unfinished (it stopped mid-way): they are resumed at start. */
export async function unfinishedTasks(db: Db): Promise<TaskRow[]> {
  return db.selectFrom("task").selectAll().where("state", "in", ["queued", "running"]).orderBy("id").execute();
}

/**
 * Takes a task for this process: a queued one, or a running one whose runner
 * has not reported progress since `staleBefore` (it died). Two processes
 * resuming at once cannot both take it.
 */
export async function claimTask(db: Db, id: string, staleBefore: number, now: number): Promise<boolean> {
  const result = await db
    .updateTable("task")
    .set({ state: "running", updated_at: now })
    .where("id", "=", id)
    .where((eb) =>
      eb.or([eb("state", "=", "queued"), eb.and([eb("state", "=", "running"), eb("updated_at", "<", staleBefore)])]),
    )
    .executeTakeFirst();
  return Number(result.numUpdatedRows) > 0;
}
