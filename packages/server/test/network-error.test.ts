import net from "node:net";
import { describe, expect, it } from "vitest";
import { describeNetworkError } from "../src/cli/network-error.js";

/** A port nothing listens on: bound, then closed. */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

async function failureOf(url: string, timeoutMs = 5000): Promise<unknown> {
  try {
    await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  } catch (error) {
    return error;
  }
  throw new Error(`${url} answered`);
}

describe("the CLI's network errors", () => {
  it("names a refused connection instead of 'fetch failed'", async () => {
    const url = `http://127.0.0.1:${await closedPort()}`;
    expect(describeNetworkError(url, await failureOf(url))).toBe(
      `cannot reach ${url}: connection refused: is the server running on that host and port?`,
    );
  });

  it("names a host that does not resolve, and a timeout", async () => {
    const url = "http://no-such-host.invalid";
    expect(describeNetworkError(url, await failureOf(url))).toMatch(/host name .*(DNS)/);
    // A listener that never answers.
    const silent = net.createServer(() => {});
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
    const slow = `http://127.0.0.1:${(silent.address() as net.AddressInfo).port}`;
    try {
      expect(describeNetworkError(slow, await failureOf(slow, 200))).toBe(
        `cannot reach ${slow}: no answer before the timeout`,
      );
    } finally {
      silent.close();
    }
  });
});
