/** A real HTTP receiver on 127.0.0.1 that records every request and answers as the test says. */
import http from "node:http";
import type { AddressInfo } from "node:net";

export interface Received {
  readonly method: string;
  readonly path: string;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: string;
  readonly at: number;
}

export interface Answer {
  readonly status?: number;
  readonly headers?: Record<string, string>;
  readonly body?: string;
  /** Wait this long before answering. */
  readonly delayMs?: number;
  /** Destroy the socket instead of answering. */
  readonly reset?: boolean;
}

export interface Receiver {
  readonly url: string;
  readonly received: Received[];
  /** How each request is answered; default 200. */
  answer: (request: Received, index: number) => Answer;
  /** Resolves when `count` requests have arrived (or rejects after timeoutMs). */
  waitFor(count: number, timeoutMs?: number): Promise<Received[]>;
  close(): Promise<void>;
}

/** `port`: a given one (a test that starts the receiver after something began sending to it); default any free one. */
export async function startReceiver(path = "/hook", atPort = 0): Promise<Receiver> {
  const received: Received[] = [];
  const waiters: { count: number; resolve: () => void }[] = [];
  const receiver: Receiver = {
    url: "",
    received,
    answer: () => ({ status: 200 }),
    waitFor(count, timeoutMs = 10_000) {
      if (received.length >= count) return Promise.resolve(received);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`receiver got ${received.length} of ${count} requests in ${timeoutMs} ms`)),
          timeoutMs,
        );
        waiters.push({
          count,
          resolve: () => {
            clearTimeout(timer);
            resolve(received);
          },
        });
      });
    },
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  const server = http.createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => {
      const entry: Received = {
        method: request.method ?? "",
        path: request.url ?? "",
        headers: request.headers,
        body: Buffer.concat(chunks).toString("utf8"),
        at: Date.now(),
      };
      const index = received.push(entry) - 1;
      for (const waiter of [...waiters]) {
        if (received.length >= waiter.count) {
          waiters.splice(waiters.indexOf(waiter), 1);
          waiter.resolve();
        }
      }
      const answer = receiver.answer(entry, index);
      const respond = () => {
        if (answer.reset) {
          request.socket.destroy();
          return;
        }
        response.writeHead(answer.status ?? 200, answer.headers ?? {});
        response.end(answer.body ?? "ok");
      };
      if (answer.delayMs) setTimeout(respond, answer.delayMs);
      else respond();
    });
  });
  await new Promise<void>((resolve) => server.listen(atPort, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return Object.assign(receiver, { url: `http://127.0.0.1:${port}${path}` });
}

/** Answers with `answer` and counts the requests open at the receiver at once (each until its answer's delay has passed). */
export function openCounter(receiver: Receiver, answer: () => { status: number; delayMs: number }) {
  let open = 0;
  let peak = 0;
  receiver.answer = () => {
    const reply = answer();
    open += 1;
    peak = Math.max(peak, open);
    setTimeout(() => (open -= 1), reply.delayMs);
    return reply;
  };
  return { peak: () => peak, open: () => open, restart: () => (peak = open) };
}
