/**
 * `GET /stream`: Server-Sent Events of the business's new events, for
 * `carehooks listen`. Each message's `id:` is the event id; a client that
 * reconnects with `Last-Event-ID` gets what it missed. New events come from
 * the process's one EventFeed; only a resume reads the database for itself,
 * once. A stream ends when its token expires or its client is revoked, and
 * when its reader falls too far behind (it resumes with Last-Event-ID).
 */
import type { ServerResponse } from "node:http";
import { Type } from "@sinclair/typebox";
import { ApiError, invalidRequest } from "../domain/errors.js";
import { isEventName } from "../domain/event-catalog.js";
import { type EventRow, eventsSince, findEvent } from "../store/events.js";
import { type App, type AppContext, principalOf } from "./context.js";
import { EventFeed, SCAN_LIMIT, TRAILING_WINDOW_MS } from "./event-feed.js";
import { RecentIds } from "./recent-ids.js";
import { errorResponses } from "./schemas.js";

const HEARTBEAT_MS = 15_000;
/** Bytes a reader may leave unread before its stream is ended rather than buffered without bound. */
const MAX_UNREAD_BYTES = 1024 * 1024;
/** What a client refused for too many streams is told to wait: long enough for one to close. */
const STREAM_LIMIT_RETRY_SECONDS = "10";

const message = (row: EventRow) => `id: ${row.id}\nevent: ${row.name}\ndata: ${row.payload}\n\n`;

/** Writes while the reader keeps up; reports false once it has fallen too far behind. */
function writeOrGiveUp(raw: ServerResponse, text: string): boolean {
  raw.write(text);
  return raw.writableLength <= MAX_UNREAD_BYTES;
}

export function streamRoutes(app: App, ctx: AppContext): void {
  const feed = new EventFeed(ctx.db, ctx.wakeup, ctx.config.pollInterval, app.log);
  // Before the server stops accepting: an open stream would otherwise hold close() for the whole grace period.
  app.addHook("preClose", async () => feed.endAll("the server is shutting down"));

  app.get(
    "/notification/v1/connect/webhook/stream",
    {
      config: { scope: "webhooks:read" },
      schema: {
        tags: ["deliveries"],
        summary: "Server-Sent Events of new events (id = event id; resumable with Last-Event-ID)",
        description: `At most CAREHOOKS_STREAMS_PER_CLIENT open streams per client and CAREHOOKS_STREAMS_PER_PROCESS per API process; past either, 429. A stream ends when its access token expires or its client is revoked.`,
        querystring: Type.Object(
          { events: Type.Optional(Type.String({ maxLength: 1000, description: "comma-separated event names" })) },
          { additionalProperties: false },
        ),
        response: { ...errorResponses(400, 401, 403, 429) },
      },
    },
    async (request, reply) => {
      const principal = principalOf(request);
      const { businessId, clientId } = principal;
      const wanted = request.query.events
        ?.split(",")
        .map((name) => name.trim())
        .filter(Boolean);
      if (wanted?.some((name) => !isEventName(name))) throw invalidRequest("events names an unknown event");
      const lastEventId = request.headers["last-event-id"];
      const resumeFrom = typeof lastEventId === "string" ? await findEvent(ctx.db, businessId, lastEventId) : undefined;

      // Checked and taken with nothing awaited in between, so simultaneous opens cannot all slip under a cap.
      if (feed.streamsOf(clientId) >= ctx.config.streamsPerClient) {
        throw new ApiError(
          "RATE_LIMITED",
          `this client already has ${ctx.config.streamsPerClient} open streams; close one first`,
          { "retry-after": STREAM_LIMIT_RETRY_SECONDS },
        );
      }
      if (feed.size >= ctx.config.streamsPerProcess) {
        throw new ApiError("RATE_LIMITED", "this server has as many open streams as it allows; retry later", {
          "retry-after": STREAM_LIMIT_RETRY_SECONDS,
        });
      }

      reply.hijack();
      const raw = reply.raw;
      raw.writeHead(200, {
        "content-type": "text/event-stream; charset=utf-8",
        "cache-control": "no-cache, no-transform",
        connection: "keep-alive",
        "x-accel-buffering": "no",
        "x-request-id": request.id,
      });
      raw.write(": carehooks stream\nretry: 1000\n\n");

      let closed = false;
      /** Until the resume is read, live events wait here (the resume may hold some of them too). */
      let pending: EventRow[] | undefined = resumeFrom ? [] : undefined;
      const isWanted = (row: EventRow) => !wanted || wanted.includes(row.name);

      const end = (reason: string) => {
        if (closed) return;
        close();
        raw.end(`: closed: ${reason}\n\n`);
      };
      const sent = new RecentIds(2 * TRAILING_WINDOW_MS);
      if (resumeFrom) sent.add(resumeFrom.id, resumeFrom.created_at);
      const deliver = (row: EventRow) => {
        if (closed || !isWanted(row)) return;
        if (pending) pending.push(row);
        else if ((resumeFrom && row.id <= resumeFrom.id) || !sent.add(row.id, row.created_at)) return;
        else if (!writeOrGiveUp(raw, message(row))) end("the reader fell behind; resume with Last-Event-ID");
      };
      const remove = feed.add({ businessId, clientId, expiresAt: principal.tokenExpiresAt, deliver, end });
      const heartbeat = setInterval(() => {
        if (raw.writableLength === 0) raw.write(": heartbeat\n\n");
      }, HEARTBEAT_MS);
      function close() {
        closed = true;
        remove();
        clearInterval(heartbeat);
      }
      raw.on("close", close);

      if (resumeFrom) {
        await replay(resumeFrom, sent, isWanted, raw, () => closed);
        const waiting = pending ?? [];
        pending = undefined;
        for (const row of waiting) deliver(row);
      }
    },
  );

  /**
   * Sends what the business wrote after `from`, page by page, waiting for the
   * reader between writes; records the ids in `sent`, so the live events
   * that queued meanwhile are not sent twice.
   */
  async function replay(
    from: EventRow,
    sent: RecentIds,
    isWanted: (row: EventRow) => boolean,
    raw: ServerResponse,
    isClosed: () => boolean,
  ): Promise<void> {
    let position: string | undefined;
    try {
      for (;;) {
        const rows = await eventsSince(
          ctx.db,
          from.business_id,
          from.created_at - TRAILING_WINDOW_MS,
          SCAN_LIMIT,
          position,
        );
        for (const row of rows) {
          if (isClosed()) return;
          if (row.id <= from.id || !sent.add(row.id, row.created_at) || !isWanted(row)) continue;
          if (!raw.write(message(row))) {
            // A reader that goes away never drains: its close ends the wait too.
            await new Promise<void>((resolve) => {
              const done = () => {
                raw.off("drain", done);
                raw.off("close", done);
                resolve();
              };
              raw.once("drain", done);
              raw.once("close", done);
            });
          }
        }
        const last = rows.at(-1);
        if (rows.length < SCAN_LIMIT || !last) return;
        position = last.id;
      }
    } catch (error) {
      app.log.warn({ err: error }, "stream replay failed");
    }
  }
}
