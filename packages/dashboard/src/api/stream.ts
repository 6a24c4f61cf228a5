/**
 * The API's event stream (`GET /stream`, Server-Sent Events) read with fetch:
 * `EventSource` cannot send an Authorization header. Reconnects after a drop,
 * resuming from the last event id, until stopped.
 */
import type { TokenSource } from "@carehooks/sdk/client";

export const STREAM_PATH = "/notification/v1/connect/webhook/stream";

export interface StreamMessage {
  readonly id: string;
  readonly event: string;
  readonly data: string;
}

/** Splits SSE text into messages; returns the complete ones and the unfinished rest. */
export function parseSse(buffer: string): { messages: StreamMessage[]; rest: string } {
  const messages: StreamMessage[] = [];
  const blocks = buffer.replaceAll("\r\n", "\n").split("\n\n");
  const rest = blocks.pop() ?? "";
  for (const block of blocks) {
    let id = "";
    let event = "message";
    const data: string[] = [];
    for (const line of block.split("\n")) {
      if (line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
      if (field === "id") id = value;
      else if (field === "event") event = value;
      else if (field === "data") data.push(value);
    }
    if (data.length > 0) messages.push({ id, event, data: data.join("\n") });
  }
  return { messages, rest };
}

export interface StreamHandle {
  stop(): void;
}

/** Calls `onMessage` for every new event; `onState` tells whether the stream is connected. */
export function openStream(
  tokens: TokenSource,
  onMessage: (message: StreamMessage) => void,
  onState: (connected: boolean) => void = () => {},
): StreamHandle {
  const abort = new AbortController();
  let lastId: string | undefined;
  const run = async () => {
    while (!abort.signal.aborted) {
      try {
        const token = await tokens.accessToken();
        const headers: Record<string, string> = { authorization: `Bearer ${token}`, accept: "text/event-stream" };
        if (lastId) headers["last-event-id"] = lastId;
        const response = await fetch(STREAM_PATH, { headers, signal: abort.signal });
        if (response.status === 401) tokens.invalidate(token);
        if (!response.ok || !response.body) throw new Error(`stream answered ${response.status}`);
        onState(true);
        const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          const parsed = parseSse(buffer + value);
          buffer = parsed.rest;
          for (const message of parsed.messages) {
            if (message.id) lastId = message.id;
            onMessage(message);
          }
        }
      } catch {
        // Dropped, refused or signed out: wait and try again (the loop ends when stopped).
      }
      if (abort.signal.aborted) return;
      onState(false);
      await new Promise((resolve) => setTimeout(resolve, 2000));
    }
  };
  void run();
  return {
    stop: () => {
      abort.abort();
      onState(false);
    },
  };
}
