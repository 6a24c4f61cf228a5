/** Walking a cursor-paged list. */
import type { Page } from "./models.js";

/**
 * Every item of a cursor-paged list, fetching page after page (following
 * `next_cursor`) as the loop asks for more. Stop early with `break`.
 *
 * @example
 * ```ts
 * for await (const delivery of paginate((cursor) => client.deliveries.list(webhookId, { status: "failed", cursor }))) {
 *   console.log(delivery.id, delivery.last_error);
 * }
 * ```
 */
export async function* paginate<T>(fetchPage: (cursor: string | undefined) => Promise<Page<T>>): AsyncGenerator<T> {
  let cursor: string | undefined;
  const seen = new Set<string>();
  for (;;) {
    const page = await fetchPage(cursor);
    yield* page.data;
    if (page.next_cursor === null || page.next_cursor === undefined || page.next_cursor === "") return;
    // A server that hands back a cursor twice would loop forever.
    if (seen.has(page.next_cursor)) throw new Error(`the API returned the cursor ${page.next_cursor} twice`);
    seen.add(page.next_cursor);
    cursor = page.next_cursor;
  }
}
