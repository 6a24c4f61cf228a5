/** A Server-Sent Events reader over a real socket, for the /stream tests. */
export interface Message {
  id: string;
  event: string;
  data: string;
}

/** Reads an SSE response over a real socket, message by message. */
export async function openStream(url: string, token: string, lastEventId?: string) {
  const controller = new AbortController();
  const response = await fetch(url, {
    headers: { authorization: `Bearer ${token}`, ...(lastEventId ? { "last-event-id": lastEventId } : {}) },
    signal: controller.signal,
  });
  const messages: Message[] = [];
  /** Comment lines, such as the reason the server gives when it ends the stream. */
  const comments: string[] = [];
  let ended = false;
  const reader = (response.body as ReadableStream<Uint8Array>).getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  void (async () => {
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) {
          ended = true;
          return;
        }
        buffer += decoder.decode(value, { stream: true });
        let end = buffer.indexOf("\n\n");
        while (end >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          for (const line of block.split("\n")) if (line.startsWith(":")) comments.push(line.slice(1).trim());
          const fields = Object.fromEntries(
            block
              .split("\n")
              .filter((line) => !line.startsWith(":") && line.includes(": "))
              .map((line) => [line.slice(0, line.indexOf(": ")), line.slice(line.indexOf(": ") + 2)]),
          );
          if (fields.id) messages.push(fields as unknown as Message);
          end = buffer.indexOf("\n\n");
        }
      }
    } catch {
      // aborted
      ended = true;
    }
  })();
  return {
    response,
    messages,
    comments,
    /** True once the server has ended the response. */
    get ended() {
      return ended;
    },
    async waitFor(count: number, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      while (messages.length < count) {
        if (Date.now() > deadline) throw new Error(`stream delivered ${messages.length} of ${count}`);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      return messages;
    },
    close: () => controller.abort(),
  };
}
