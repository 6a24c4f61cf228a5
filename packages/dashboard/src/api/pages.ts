/** Reading the first pages of a cursor-paged list, newest first, for a "Load more" list. */
import type { Page } from "@carehooks/sdk/client";

/** Up to `pages` pages, re-read together (so a refresh keeps what the user loaded); `more` when another follows. */
export async function firstPages<T>(
  fetchPage: (cursor: string | undefined) => Promise<Page<T>>,
  pages: number,
): Promise<{ items: T[]; more: boolean }> {
  const items: T[] = [];
  let cursor: string | undefined;
  for (let n = 0; n < pages; n++) {
    const page = await fetchPage(cursor);
    items.push(...page.data);
    if (!page.next_cursor) return { items, more: false };
    cursor = page.next_cursor;
  }
  return { items, more: true };
}
