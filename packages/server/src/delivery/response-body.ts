/**
 * Reading a receiver's response body: never more than a cap, so a receiver
 * streaming without end cannot hold a worker, and decoded only when kept.
 * Both readers throw what ended the body early (a reset, an abort); reaching
 * the cap is not an error.
 */
import type { Dispatcher } from "undici";

export type ResponseBody = Dispatcher.ResponseData["body"];

/** Reads up to `max` bytes; keeps the first `keep` as UTF-8 text. Stops early by destroying the stream. */
export async function readCapped(body: ResponseBody, max: number, keep: number): Promise<string> {
  const kept: Buffer[] = [];
  let keptBytes = 0;
  let received = 0;
  let truncated = false;
  const chunks = body[Symbol.asyncIterator]();
  try {
    while (true) {
      const next = await chunks.next();
      if (next.done === true) break;
      const chunk = next.value as Buffer;
      received += chunk.length;
      if (keptBytes < keep) {
        const part = chunk.subarray(0, keep - keptBytes);
        kept.push(part);
        keptBytes += part.length;
      }
      if (received >= max) {
        truncated = true;
        break;
      }
    }
  } finally {
    // Unread data means the connection cannot be reused: destroying makes undici close it.
    if (truncated || !body.readableEnded) {
      body.on("error", () => {});
      body.destroy();
    }
  }
  const bytes = Buffer.concat(kept, keptBytes);
  const decoder = new TextDecoder("utf-8", { fatal: false, ignoreBOM: true });
  // When cut short, a character split at the cut is dropped rather than shown as U+FFFD.
  return keptBytes < received || truncated ? decoder.decode(bytes, { stream: true }) : decoder.decode(bytes);
}

/**
 * Reads and discards up to `max` bytes, for a body nobody keeps: no chunk is
 * gathered or decoded. A body within the cap leaves the connection reusable;
 * a longer one is cut, which closes it.
 */
export async function discardCapped(body: ResponseBody, max: number): Promise<void> {
  // dump() resolves once the body closes, however it ended, and never rejects without a signal of its own.
  await body.dump({ limit: max });
  const failure = body.errored;
  if (failure !== null && !isCapCut(failure)) throw failure;
}

/**
 * dump() ends a body over the cap by destroying it (with undici's AbortError when the
 * Content-Length is already too long, else with nothing, which undici records as a
 * RequestAbortedError). Aborts from elsewhere carry the attempt's own reason instead.
 */
function isCapCut(error: Error): boolean {
  const code = (error as { code?: unknown }).code;
  return code === "UND_ERR_ABORT" || code === "UND_ERR_ABORTED";
}
