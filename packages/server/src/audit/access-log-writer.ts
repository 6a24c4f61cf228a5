/**
 * Appends access-log rows in batches: requests that finish together share one
 * INSERT, and each request's answer waits until its row is written, so no read
 * is ever answered without leaving a trace.
 */
import { newId } from "../domain/ids.js";
import { type AccessLogRow, insertAccessLogs } from "../store/access-log.js";
import type { Db } from "../store/open.js";
import type { AccessOutcome } from "../store/schema.js";

export interface AccessEntry {
  readonly businessId: string;
  readonly clientId: string;
  readonly resourceType: string;
  readonly resourceId?: string | undefined;
  readonly resourceIds?: readonly string[] | undefined;
  readonly outcome: AccessOutcome;
  readonly method: string;
  readonly path: string;
  readonly requestId: string;
  readonly ip?: string | undefined;
  readonly userAgent?: string | undefined;
}

const MAX_BATCH = 500;

export class AccessLogWriter {
  #pending: { row: AccessLogRow; settle: (error?: unknown) => void }[] = [];
  #scheduled = false;

  constructor(private readonly db: Db) {}

  /** Resolves once the row is committed; rejects if it could not be written. */
  write(entry: AccessEntry, now = Date.now()): Promise<void> {
    const row: AccessLogRow = {
      id: newId("accessLog", now),
      business_id: entry.businessId,
      client_id: entry.clientId,
      resource_type: entry.resourceType,
      resource_id: entry.resourceId ?? null,
      resource_ids: entry.resourceIds ? JSON.stringify(entry.resourceIds) : null,
      outcome: entry.outcome,
      method: entry.method,
      path: entry.path.slice(0, 2048),
      request_id: entry.requestId,
      ip: entry.ip ?? null,
      user_agent: entry.userAgent?.slice(0, 512) ?? null,
      created_at: now,
    };
    return new Promise((resolve, reject) => {
      this.#pending.push({ row, settle: (error) => (error ? reject(error) : resolve()) });
      if (!this.#scheduled) {
        this.#scheduled = true;
        setImmediate(() => void this.#flush());
      }
    });
  }

  async #flush(): Promise<void> {
    this.#scheduled = false;
    while (this.#pending.length > 0) {
      const batch = this.#pending.splice(0, MAX_BATCH);
      try {
        await insertAccessLogs(
          this.db,
          batch.map((item) => item.row),
        );
        for (const item of batch) item.settle();
      } catch {
        // One bad row must not cost the others their trace: retry them one by one.
        for (const item of batch) {
          await insertAccessLogs(this.db, [item.row]).then(
            () => item.settle(),
            (error: unknown) => item.settle(error),
          );
        }
      }
    }
  }
}
