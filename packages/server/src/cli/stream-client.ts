/**
 * Follows the server's `/stream` (Server-Sent Events) and keeps following:
 * on a dropped connection or a server restart it reconnects with
 * `Last-Event-ID`, so nothing created meanwhile is missed.
 */
import { createParser, type EventSourceMessage } from "eventsource-parser";
import type { Api } from "./api.js";

export interface StreamEvent {
  readonly id: string;
  readonly name: string;
  /** The payload text exactly as the server stored it. */
  readonly data: string;
}

export interface FollowOptions {
  readonly events?: readonly string[] | undefined;
  readonly onEvent: (event: StreamEvent) => Promise<void> | void;
  readonly onStatus?: (status: "connected" | "disconnected", detail?: string) => void;
  readonly signal?: AbortSignal;
}

const RECONNECT_MS = [250, 500, 1000, 2000];

export async function followStream(api: Api, options: FollowOptions): Promise<void> {
  let lastEventId: string | undefined;
  let failures = 0;
  const query = options.events?.length ? `?events=${encodeURIComponent(options.events.join(","))}` : "";
  while (!options.signal?.aborted) {
    try {
      const token = await api.token();
      const response = await fetch(`${api.profile.url}/notification/v1/connect/webhook/stream${query}`, {
        headers: {
          authorization: `Bearer ${token}`,
          accept: "text/event-stream",
          ...(lastEventId ? { "last-event-id": lastEventId } : {}),
        },
        ...(options.signal ? { signal: options.signal } : {}),
      });
      if (response.status === 401) {
        failures += 1;
        throw new Error("unauthorized");
      }
      if (!response.ok || !response.body) throw new Error(`HTTP ${response.status}`);
      failures = 0;
      options.onStatus?.("connected");
      // The SSE framing (CR/LF, multi-line data, comments, retry) is eventsource-parser's; events are handed
      // on in order, each awaited before the next.
      const received: EventSourceMessage[] = [];
      const parser = createParser({ onEvent: (event) => received.push(event) });
      const decoder = new TextDecoder();
      for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
        parser.feed(decoder.decode(chunk, { stream: true }));
        for (const event of received.splice(0)) {
          if (!event.id) continue;
          lastEventId = event.id;
          await options.onEvent({ id: event.id, name: event.event ?? "message", data: event.data });
        }
      }
      options.onStatus?.("disconnected", "the server closed the stream");
    } catch (error) {
      if (options.signal?.aborted) return;
      options.onStatus?.("disconnected", (error as Error).message);
      failures += 1;
    }
    const wait = RECONNECT_MS[Math.min(failures, RECONNECT_MS.length - 1)] ?? 1000;
    await new Promise((resolve) => setTimeout(resolve, wait));
  }
}
