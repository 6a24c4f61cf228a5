/** A local HTTP listener for SDK tests, closed (with its open connections) by the function it registers. */
import http from "node:http";
import type { AddressInfo } from "node:net";

/** Listens on a free 127.0.0.1 port; pushes its closer onto `closers`; returns its base URL. */
export async function listenLocally(listener: http.RequestListener, closers: (() => Promise<void>)[]): Promise<string> {
  const server = http.createServer(listener);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  closers.push(
    () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}
