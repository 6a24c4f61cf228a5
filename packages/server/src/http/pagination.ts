/** Cursor pages over id-ordered rows. A cursor is the opaque base64url of the last id returned. */
import { invalidRequest } from "../domain/errors.js";

export function decodeCursor(cursor: string | undefined): string | undefined {
  if (cursor === undefined || cursor === "") return undefined;
  const id = Buffer.from(cursor, "base64url").toString("utf8");
  if (!/^[a-z]+_[0-9A-Z]{26}$/.test(id)) throw invalidRequest("cursor is not one this API returned");
  return id;
}

export function encodeCursor(id: string): string {
  return Buffer.from(id, "utf8").toString("base64url");
}

/**
 * Given up to `limit + 1` rows, returns the page and the cursor of the next one
 * (null when this is the last page).
 */
export function toPage<Row extends { id: string }, Item>(
  rows: readonly Row[],
  limit: number,
  present: (row: Row) => Item,
): { data: Item[]; next_cursor: string | null; msg: "success" } {
  const page = rows.slice(0, limit);
  const last = page.at(-1);
  return {
    data: page.map(present),
    next_cursor: rows.length > limit && last ? encodeCursor(last.id) : null,
    msg: "success",
  };
}
