import { describe, expect, it } from "vitest";
import { TokenService } from "../src/auth/tokens.js";
import { parseDuration, parseSize } from "../src/config/units.js";
import { firstIdAt, ID_PREFIXES, isId, newId, newTimedId } from "../src/domain/ids.js";
import { generateMasterKey, KeyBox } from "../src/domain/key-box.js";
import { parseScopes, SCOPES } from "../src/domain/scopes.js";
import { hashSecret, verifySecret } from "../src/domain/secrets.js";
import { signingKeyProblem } from "../src/domain/signing-key.js";
import { isoTime, parseTimeFilter } from "../src/domain/time.js";

describe("ids", () => {
  it("carry their prefix and sort in creation order, also within one millisecond", () => {
    const now = Date.now();
    const ids = Array.from({ length: 1000 }, () => newId("event", now));
    expect(new Set(ids).size).toBe(1000);
    expect([...ids].sort()).toEqual(ids);
    expect(ids.every((id) => isId("event", id))).toBe(true);
    expect(isId("delivery", ids[0] as string)).toBe(false);
    expect(newId("event", now + 1) > (ids.at(-1) as string)).toBe(true);
    expect(Object.values(ID_PREFIXES)).toEqual(
      expect.arrayContaining(["biz", "cli", "wh", "apt", "rx", "evt", "dlv", "att", "task"]),
    );
  });

  it("stay ordered when the clock steps back", () => {
    const a = newId("event", Date.now() + 10_000);
    const b = newId("event", Date.now());
    expect(b > a).toBe(true);
  });

  it("carry the time they give with them (newTimedId), the clock's or, after it stepped back, the last one's", () => {
    const now = Date.now() + 20_000;
    const madeAt = (at: number, id: string) => id >= firstIdAt("event", at) && id < firstIdAt("event", at + 1);
    const first = newTimedId("event", now);
    expect(first.at).toBe(now);
    expect(madeAt(now, first.id)).toBe(true);
    const stepped = newTimedId("event", now - 5_000);
    expect(stepped.at).toBe(now);
    expect(madeAt(now, stepped.id) && stepped.id > first.id).toBe(true);
  });
});

describe("the key box", () => {
  it("seals and opens, with a fresh IV each time", () => {
    const box = new KeyBox(generateMasterKey());
    const a = box.seal("whsec_secret");
    expect(a).not.toBe(box.seal("whsec_secret"));
    expect(box.open(a)).toBe("whsec_secret");
    expect(a).toMatch(new RegExp(`^v1\\.${box.keyId}\\.`));
  });

  it("refuses a value sealed by another key or tampered with", () => {
    const box = new KeyBox(generateMasterKey());
    const other = new KeyBox(generateMasterKey());
    expect(() => other.open(box.seal("x"))).toThrow(/master key/);
    const sealed = box.seal("secret value");
    // The second-to-last character carries six bits of the ciphertext; the last one may be padding.
    const tampered = `${sealed.slice(0, -2)}${sealed.at(-2) === "A" ? "B" : "A"}${sealed.slice(-1)}`;
    expect(() => box.open(tampered)).toThrow();
    // Opened values are remembered by their exact text: opening the original first changes nothing.
    expect(box.open(sealed)).toBe("secret value");
    expect(() => box.open(tampered)).toThrow();
    expect(() => other.open(sealed)).toThrow(/master key/);
    expect(box.matches(box.checkValue())).toBe(true);
    expect(other.matches(box.checkValue())).toBe(false);
  });
});

describe("access tokens", () => {
  it("verify until they expire, also once remembered, and never with an altered signature", async () => {
    const tokens = new TokenService("a-jwt-secret-of-enough-length-0123456789", 2_000);
    const issuedAt = Date.UTC(2026, 10, 29, 3, 0, 0);
    const token = await tokens.issue({ clientId: "cli_1", businessId: "biz_1" }, issuedAt);
    // The expiry comes with the claims: a stream opened with the token ends then.
    const claims = { clientId: "cli_1", businessId: "biz_1", expiresAt: issuedAt + 2_000 };
    expect(await tokens.verify(token, issuedAt)).toEqual(claims);
    expect(await tokens.verify(token, issuedAt + 1_999)).toEqual(claims);
    expect(await tokens.verify(token, issuedAt + 2_000)).toBeUndefined();
    expect(await tokens.verify(token, issuedAt + 1_000)).toEqual(claims);
    const [header, payload, signature] = token.split(".") as [string, string, string];
    const altered = `${header}.${payload}.${signature.startsWith("A") ? "B" : "A"}${signature.slice(1)}`;
    expect(await tokens.verify(altered, issuedAt)).toBeUndefined();
    const other = new TokenService("another-jwt-secret-of-enough-length-987654", 2_000);
    expect(await other.verify(token, issuedAt)).toBeUndefined();
  });
});

describe("client secrets", () => {
  it("verify only the secret they were made from", async () => {
    const stored = await hashSecret("chs_right");
    expect(stored).toMatch(/^scrypt\$/);
    expect(await verifySecret("chs_right", stored)).toBe(true);
    expect(await verifySecret("chs_wrong", stored)).toBe(false);
    expect(await verifySecret("chs_right", "garbage")).toBe(false);
  });
});

describe("signing keys", () => {
  it.each([
    ["sixteen-chars-ok", undefined],
    ["k".repeat(256), undefined],
    [`whsec_${Buffer.alloc(24).toString("base64")}`, undefined],
    [`whsec_${Buffer.alloc(64).toString("base64")}`, undefined],
    ["fifteen-chars-x", /16 to 256/],
    ["k".repeat(257), /16 to 256/],
    ["tab\tinside-the-key", /printable/],
    ["ünïcödé-key-long-enough", /printable/],
    [`whsec_${Buffer.alloc(23).toString("base64")}`, /24 to 64/],
    [`whsec_${Buffer.alloc(65).toString("base64")}`, /24 to 64/],
    ["whsec_this-is-not-base64!!", /base64/],
  ])("%s → %s", (key, problem) => {
    const found = signingKeyProblem(key);
    if (problem === undefined) expect(found).toBeUndefined();
    else expect(found).toMatch(problem);
  });
});

describe("units, scopes and times", () => {
  it("parse durations and sizes", () => {
    expect(parseDuration("250ms")).toBe(250);
    expect(parseDuration("15s")).toBe(15_000);
    expect(parseDuration("1.5h")).toBe(5_400_000);
    expect(parseDuration("5d")).toBe(432_000_000);
    expect(() => parseDuration("5 weeks")).toThrow();
    expect(parseSize("1MiB")).toBe(1_048_576);
    expect(parseSize("512KiB")).toBe(524_288);
    expect(() => parseSize("1MB")).toThrow();
  });

  it("parse scope lists", () => {
    expect(parseScopes("all")).toEqual([...SCOPES]);
    expect(parseScopes("webhooks:read, webhooks:write")).toEqual(["webhooks:read", "webhooks:write"]);
    expect(() => parseScopes("webhooks:admin")).toThrow(/unknown scope/);
    expect(() => parseScopes("")).toThrow(/no scopes/);
  });

  it("format times to the second and parse filters", () => {
    expect(isoTime(Date.UTC(2026, 10, 28, 23, 40, 10, 999))).toBe("2026-11-28T23:40:10Z");
    // The same text as toISOString to the second, across days, leap days, the ends of the range it formats itself,
    // and outside it (before 1970, after 9999), where toISOString's own form is kept.
    const plain = (ms: number) => `${new Date(ms).toISOString().slice(0, -5)}Z`;
    const edges = [
      0,
      1,
      999,
      Date.UTC(2024, 1, 29, 23, 59, 59, 999),
      Date.UTC(2024, 2, 1),
      Date.UTC(2026, 11, 31, 23, 59, 59, 500),
      Date.UTC(9999, 11, 31, 23, 59, 59, 999),
      Date.UTC(9999, 11, 31, 23, 59, 59, 999) + 1,
      -1,
      -86_400_001,
      1.5,
      Date.UTC(2026, 5, 1, 12) + 0.25,
    ];
    let seed = 7;
    const random = () => {
      seed = (seed * 16_807) % 2_147_483_647;
      return seed / 2_147_483_647;
    };
    const samples = [...edges, ...Array.from({ length: 5000 }, () => Math.floor(random() * 4e12) - 1e11)];
    // Twice over, so both the formatted day and a changed day are taken.
    for (const ms of [...samples, ...samples.reverse()]) expect(isoTime(ms), String(ms)).toBe(plain(ms));
    expect(() => isoTime(Number.NaN)).toThrow(RangeError);
    // Not a number (as a driver could hand over a string): as before, not the arithmetic's reading.
    expect(() => isoTime("1700000000000" as unknown as number)).toThrow(RangeError);
    expect(isoTime("0" as unknown as number)).toBe(plain("0" as unknown as number));
    expect(parseTimeFilter("2026-11-28T23:40:10Z")).toBe(Date.UTC(2026, 10, 28, 23, 40, 10));
    expect(parseTimeFilter("1730189586")).toBe(1_730_189_586_000);
    expect(parseTimeFilter("yesterday")).toBeUndefined();
  });
});

describe("the event catalog", () => {
  it("has examples that validate against their own schemas, and payload builders that do too", async () => {
    const { Ajv } = await import("ajv");
    const { EVENT_CATALOG } = await import("../src/domain/event-catalog.js");
    const { appointmentEvent, prescriptionEvent } = await import("../src/domain/event-payloads.js");
    const ajv = new Ajv({ strict: false });
    const validators = Object.fromEntries(
      EVENT_CATALOG.map((entry) => [entry.name, ajv.compile(JSON.parse(JSON.stringify(entry.schema)))]),
    );
    for (const entry of EVENT_CATALOG) expect(validators[entry.name]?.(entry.example), entry.name).toBe(true);

    const origin = {
      eventId: newId("event"),
      at: Date.UTC(2026, 10, 28, 12),
      transactionId: "req_x",
      clientId: "cli_x",
      businessId: "biz_x",
    };
    const appointment = {
      id: "apt_x",
      doctor_id: "d",
      patient_id: "p",
      clinic_id: "c",
      partner_appointment_id: null,
      status: "CM" as const,
      created_at: origin.at - 60_000,
      updated_at: origin.at,
    };
    const completed = JSON.parse(appointmentEvent(origin, appointment, "completed"));
    expect(validators["appointment.updated"]?.(completed)).toBe(true);
    expect(Object.keys(completed)).toEqual([
      "service",
      "event",
      "event_id",
      "event_time",
      "timestamp",
      "transaction_id",
      "client_id",
      "business_id",
      "data",
    ]);
    expect(completed.event_time).toBe(origin.at / 1000);
    expect(validators["appointment.created"]?.(completed)).toBe(false);
    const rx = {
      id: "rx_x",
      appointment_id: null,
      doctor_id: "d",
      patient_id: "p",
      clinic_id: "c",
      current_version: 3,
      created_at: 0,
      updated_at: origin.at,
    };
    const updated = JSON.parse(prescriptionEvent(origin, rx, "updated"));
    expect(updated.data).toMatchObject({ current_version: 3, previous_version: 2 });
    expect(validators["prescription.updated"]?.(updated)).toBe(true);
  });
});
