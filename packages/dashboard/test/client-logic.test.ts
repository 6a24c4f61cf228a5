/** The dashboard's client-side logic that needs no browser: SSE parsing and token renewal. */
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { parseSse } from "../src/api/stream.js";
import { renewDelay, SessionEnded, SessionTokens } from "../src/api/tokens.js";

describe("parseSse", () => {
  it("splits complete messages and keeps the unfinished rest", () => {
    const text =
      ': carehooks stream\nretry: 1000\n\nid: evt_1\nevent: appointment.created\ndata: {"a":1}\n\nid: evt_2\ndata: {"b"';
    const { messages, rest } = parseSse(text);
    expect(messages).toEqual([{ id: "evt_1", event: "appointment.created", data: '{"a":1}' }]);
    expect(rest).toBe('id: evt_2\ndata: {"b"');
    const next = parseSse(`${rest}:2}\n\n`);
    expect(next.messages).toEqual([{ id: "evt_2", event: "message", data: '{"b":2}' }]);
    expect(next.rest).toBe("");
  });

  it("joins multi-line data and reads CRLF line ends", () => {
    const { messages } = parseSse("id: x\r\ndata: one\r\ndata: two\r\n\r\n");
    expect(messages).toEqual([{ id: "x", event: "message", data: "one\ntwo" }]);
  });
});

describe("SessionTokens", () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it("renews a fifth of the lifetime before expiry, at most a minute before", () => {
    expect(renewDelay(600)).toBe(540_000);
    expect(renewDelay(60)).toBe(48_000);
    expect(renewDelay(0)).toBe(0);
  });

  it("refreshes on a timer before the access token expires, even when idle", async () => {
    let n = 0;
    const renew = vi.fn(async (refresh: string) => {
      n += 1;
      return { accessToken: `access-${n}`, expiresIn: 60, refreshToken: `${refresh}+` };
    });
    const ended = vi.fn();
    const tokens = new SessionTokens({ accessToken: "access-0", expiresIn: 60, refreshToken: "r" }, renew, ended);
    expect(await tokens.accessToken()).toBe("access-0");
    await vi.advanceTimersByTimeAsync(47_000);
    expect(renew).not.toHaveBeenCalled();
    await vi.advanceTimersByTimeAsync(1_500);
    expect(renew).toHaveBeenCalledWith("r");
    expect(await tokens.accessToken()).toBe("access-1");
    await vi.advanceTimersByTimeAsync(48_500);
    expect(renew).toHaveBeenLastCalledWith("r+");
    expect(await tokens.accessToken()).toBe("access-2");
    expect(ended).not.toHaveBeenCalled();
    tokens.end();
  });

  it("renews at once after the server refused the token, sharing one renewal between callers", async () => {
    const renew = vi.fn(async () => ({ accessToken: "fresh", expiresIn: 600, refreshToken: "r2" }));
    const tokens = new SessionTokens({ accessToken: "stale", expiresIn: 600, refreshToken: "r" }, renew, () => {});
    tokens.invalidate("stale");
    expect(await Promise.all([tokens.accessToken(), tokens.accessToken()])).toEqual(["fresh", "fresh"]);
    expect(renew).toHaveBeenCalledTimes(1);
    tokens.end();
  });

  it("ends the session when the refresh fails, and a portal session when it expires", async () => {
    const ended = vi.fn();
    const refused = new SessionTokens(
      { accessToken: "a", expiresIn: 600, refreshToken: "r" },
      async () => {
        throw new Error("401");
      },
      ended,
    );
    refused.invalidate("a");
    await expect(refused.accessToken()).rejects.toBeInstanceOf(SessionEnded);
    expect(ended).toHaveBeenCalledWith("Your session ended: sign in again.");

    const portalEnded = vi.fn();
    const portal = new SessionTokens({ accessToken: "p", expiresIn: 3600 }, undefined, portalEnded);
    await vi.advanceTimersByTimeAsync(3_000_000);
    expect(await portal.accessToken()).toBe("p");
    await vi.advanceTimersByTimeAsync(700_000);
    expect(portalEnded).toHaveBeenCalledWith("This session has ended. Open a new link to continue.");
    await expect(portal.accessToken()).rejects.toBeInstanceOf(SessionEnded);
  });

  it("refuses tokens after sign-out", async () => {
    const tokens = new SessionTokens({ accessToken: "a", expiresIn: 600, refreshToken: "r" }, undefined, () => {});
    tokens.end();
    await expect(tokens.accessToken()).rejects.toBeInstanceOf(SessionEnded);
  });
});
