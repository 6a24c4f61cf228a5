import { describe, expect, it } from "vitest";
import {
  checkEndpoint,
  isAddressAllowed,
  MAX_ENDPOINT_LENGTH,
  parseAllowedTargets,
  refusedRange,
  type UrlPolicy,
} from "../src/domain/url-policy.js";

// http allowed so the host rules are tested on their own.
const open: UrlPolicy = { allowHttp: true, allowedTargets: [] };
const strict: UrlPolicy = { allowHttp: false, allowedTargets: [] };
const allowing = (...entries: string[]): UrlPolicy => ({
  allowHttp: true,
  allowedTargets: parseAllowedTargets(entries),
});

function reasonOf(endpoint: string, policy: UrlPolicy): string | undefined {
  const result = checkEndpoint(endpoint, policy);
  return result.ok ? undefined : result.reason;
}

// [host as written in the URL, refused range or undefined when it must pass]
const ADDRESS_ROWS: readonly (readonly [string, string | undefined])[] = [
  ["127.0.0.1", "loopback"],
  ["127.255.255.254", "loopback"],
  ["2130706433", "loopback"], // decimal
  ["0177.0.0.1", "loopback"], // octal
  ["0x7f.1", "loopback"], // hex, short
  ["0x7f000001", "loopback"],
  ["127.1", "loopback"], // short
  ["127.0.0.1.", "loopback"], // trailing dot
  ["127.0.0.1..", "loopback"], // left as a name by the URL parser
  ["0", "unspecified"],
  ["0.0.0.0", "unspecified"],
  ["0.1.2.3", "reserved"],
  ["10.0.0.1", "private"],
  ["172.16.0.1", "private"],
  ["172.31.255.255", "private"],
  ["192.168.1.1", "private"],
  ["169.254.1.1", "link-local"],
  ["169.254.169.254", "cloud metadata"],
  ["100.100.100.200", "cloud metadata"],
  ["100.64.0.1", "carrier-grade NAT"],
  ["100.127.255.255", "carrier-grade NAT"],
  ["224.0.0.1", "multicast"],
  ["239.255.255.250", "multicast"],
  ["255.255.255.255", "broadcast"],
  ["240.0.0.1", "reserved"],
  ["192.0.0.8", "reserved"],
  ["192.0.2.1", "documentation"],
  ["198.51.100.7", "documentation"],
  ["203.0.113.9", "documentation"],
  ["198.18.0.1", "benchmarking"],
  ["198.19.255.255", "benchmarking"],
  ["[::1]", "loopback"],
  ["[::]", "unspecified"],
  ["[fe80::1]", "link-local"],
  ["[febf:ffff::1]", "link-local"],
  ["[fec0::1]", "site-local"],
  ["[fc00::1]", "unique-local"],
  ["[fd12:3456::1]", "unique-local"],
  ["[fd00:ec2::254]", "cloud metadata"],
  ["[ff02::1]", "multicast"],
  ["[2001:db8::1]", "documentation"],
  ["[3fff::1]", "documentation"],
  ["[2001:2::1]", "benchmarking"],
  ["[100::1]", "discard"],
  ["[4000::1]", "reserved"], // outside 2000::/3
  ["[::ffff:127.0.0.1]", "loopback via IPv4-mapped 127.0.0.1"],
  ["[::ffff:7f00:1]", "loopback via IPv4-mapped 127.0.0.1"],
  ["[0:0:0:0:0:ffff:a00:1]", "private via IPv4-mapped 10.0.0.1"],
  ["[::ffff:169.254.169.254]", "cloud metadata via IPv4-mapped 169.254.169.254"],
  ["[::ffff:0:127.0.0.1]", "loopback via IPv4-translated 127.0.0.1"],
  ["[::127.0.0.1]", "loopback via IPv4-compatible 127.0.0.1"],
  ["[::7f00:1]", "loopback via IPv4-compatible 127.0.0.1"],
  ["[::a9fe:a9fe]", "cloud metadata via IPv4-compatible 169.254.169.254"],
  ["[64:ff9b::127.0.0.1]", "loopback via NAT64 127.0.0.1"],
  ["[64:ff9b::a00:1]", "private via NAT64 10.0.0.1"],
  ["[64:ff9b:1::1]", "NAT64 local-use"],
  ["[2002:7f00:1::1]", "loopback via 6to4 127.0.0.1"],
  ["[2002:c0a8:101::]", "private via 6to4 192.168.1.1"],
  ["[2001:0:4136:e378:8000:63bf:3fff:fdd2]", "Teredo"],
  ["[2001:10::1]", "reserved"], // ORCHID
  // plain global unicast passes
  ["93.184.216.34", undefined],
  ["8.8.8.8", undefined],
  ["1.1.1.1", undefined],
  ["172.32.0.1", undefined], // just past 172.16.0.0/12
  ["100.128.0.1", undefined], // just past 100.64.0.0/10
  ["11.0.0.1", undefined],
  ["223.255.255.254", undefined], // just below multicast
  ["[2606:4700:4700::1111]", undefined],
  ["[2a00:1450:4001:830::200e]", undefined],
  ["[::ffff:93.184.216.34]", "IPv4-mapped"], // the contract refuses mapped spellings, whatever they embed
  ["[::808:808]", "IPv4-compatible"], // IPv4-compatible 8.8.8.8: deprecated, refused
  ["[64:ff9b::808:808]", undefined], // NAT64 of 8.8.8.8
  ["[2002:808:808::1]", undefined], // 6to4 of 8.8.8.8
];

// [host as written in the URL, expected reason fragment or undefined when it must pass]
const NAME_ROWS: readonly (readonly [string, string | undefined])[] = [
  ["localhost", "refused range (loopback)"],
  ["LOCALHOST", "refused range (loopback)"],
  ["localhost.", "refused range (loopback)"],
  ["localhost..", "refused range (loopback)"],
  ["api.localhost", "refused range (loopback)"],
  ["a.b.localhost.", "refused range (loopback)"],
  ["localhost.localdomain", "refused range (loopback)"],
  ["%6c%6fcalhost", "refused range (loopback)"], // percent-encoded
  ["ｌｏｃａｌｈｏｓｔ", "refused range (loopback)"], // full-width, folded by IDNA
  ["metadata.google.internal", "cloud metadata service"],
  ["METADATA.google.internal.", "cloud metadata service"],
  ["metadata.goog", "cloud metadata service"],
  ["instance-data", "cloud metadata service"],
  ["instance-data.ec2.internal", "cloud metadata service"],
  ["example.com", undefined],
  ["example.com.", undefined],
  ["hooks.clinic.example", undefined],
  ["localhost.example.com", undefined],
  ["mylocalhost", undefined],
  ["metadata", undefined], // not on the list; the connect-time check covers it
  ["127.0.0.1.nip.io", undefined], // resolves to loopback: only the connect-time check can tell
];

describe("checkEndpoint: IP literal hosts", () => {
  it("has a wide table", () => {
    expect(ADDRESS_ROWS.length + NAME_ROWS.length).toBeGreaterThanOrEqual(35);
  });

  it.each(ADDRESS_ROWS)("http://%s/ → %s", (host, range) => {
    const endpoint = `http://${host}/hook`;
    const result = checkEndpoint(endpoint, open);
    if (range === undefined) {
      expect(result).toMatchObject({ ok: true });
    } else {
      const hostname = new URL(endpoint).hostname;
      expect(result).toEqual({
        ok: false,
        reason: `endpoint host ${hostname} is in a refused range (${range}); set CAREHOOKS_ALLOWED_TARGETS to allow it`,
      });
    }
  });

  it.each(ADDRESS_ROWS)("refusedRange and isAddressAllowed agree for %s", (host, range) => {
    // What the dispatcher would see after resolving: the bare canonical address.
    const address = new URL(`http://${host}/`).hostname.replace(/^\[|\]$/g, "").replace(/\.+$/, "");
    expect(refusedRange(address)).toBe(range);
    expect(isAddressAllowed(address, open)).toBe(range === undefined);
  });
});

describe("checkEndpoint: host names", () => {
  it.each(NAME_ROWS)("http://%s/ → %s", (host, fragment) => {
    const result = checkEndpoint(`http://${host}/hook`, open);
    if (fragment === undefined) expect(result).toMatchObject({ ok: true });
    else expect(reasonOf(`http://${host}/hook`, open)).toContain(fragment);
  });

  it("explains a refused loopback name", () => {
    expect(reasonOf("https://localhost:3000/x", strict)).toBe(
      "endpoint host localhost is in a refused range (loopback); set CAREHOOKS_ALLOWED_TARGETS to allow it",
    );
  });
});

describe("checkEndpoint: URL shape", () => {
  it.each([
    "https://user:pass@example.com/",
    "https://user@example.com/",
    "https://:pass@example.com/",
    "https://user:pass@93.184.216.34/",
    "https://@example.com/",
    "https://:@example.com/",
  ])("refuses credentials in %s", (endpoint) => {
    expect(reasonOf(endpoint, strict)).toBe("endpoint must not contain credentials");
  });

  it.each([
    ["ftp://example.com/file", "ftp:"],
    ["javascript:alert(1)", "javascript:"],
    ["file:///etc/passwd", "file:"],
    ["data:text/plain,hello", "data:"],
    ["ws://example.com/socket", "ws:"],
    ["gopher://127.0.0.1:6379/_INFO", "gopher:"],
  ])("refuses the non-http scheme of %s", (endpoint, scheme) => {
    expect(reasonOf(endpoint, open)).toBe(`endpoint must be an absolute http(s) URL, not ${scheme}`);
  });

  it.each([
    "",
    "/hooks",
    "hooks",
    "example.com/hooks",
    "//example.com/hooks",
    "https://",
    "https:example.com",
    "https:/example.com",
    "https:\\\\example.com\\hook",
    "http://[::1/",
    "http://exa%mple.com/",
  ])("refuses %j as not an absolute http(s) URL", (endpoint) => {
    expect(reasonOf(endpoint, open)).toBe("endpoint must be an absolute http(s) URL");
  });

  it.each([
    " https://example.com/",
    "https://example.com/ ",
    "https://exa\nmple.com/",
    "https://example.com/a\tb",
    "https://example.com/a b",
    "https://example.com/\u0000",
  ])("refuses whitespace or control characters in %j", (endpoint) => {
    expect(reasonOf(endpoint, open)).toBe("endpoint must not contain whitespace or control characters");
  });

  it.each(["https://example.com:0/", "http://example.com:00/hook", "https://93.184.216.34:0/"])(
    "refuses port 0 in %s: nothing listens there",
    (endpoint) => {
      expect(reasonOf(endpoint, open)).toBe("endpoint must not use port 0");
    },
  );

  it("refuses a non-string at runtime", () => {
    expect(reasonOf(42 as unknown as string, open)).toBe("endpoint must be an absolute http(s) URL");
  });
});

describe("checkEndpoint: length limit", () => {
  const base = "https://example.com/";

  it("accepts exactly MAX_ENDPOINT_LENGTH characters", () => {
    expect(MAX_ENDPOINT_LENGTH).toBe(2048);
    const endpoint = base + "a".repeat(MAX_ENDPOINT_LENGTH - base.length);
    expect(endpoint).toHaveLength(2048);
    expect(checkEndpoint(endpoint, strict)).toMatchObject({ ok: true, normalized: endpoint });
  });

  it("refuses one character more", () => {
    const endpoint = base + "a".repeat(MAX_ENDPOINT_LENGTH - base.length + 1);
    expect(reasonOf(endpoint, strict)).toBe("endpoint is longer than 2048 characters");
  });

  it("refuses input that only grows past the limit once percent-encoded", () => {
    const endpoint = `${base}${"é".repeat(1000)}`;
    expect(endpoint.length).toBeLessThan(MAX_ENDPOINT_LENGTH);
    expect(reasonOf(endpoint, strict)).toBe("endpoint is longer than 2048 characters once normalised");
  });

  it("never echoes huge input back", () => {
    const host = `${"a".repeat(60)}.`.repeat(30);
    for (const endpoint of [`ftp${"x".repeat(1500)}://example.com/`, `http://${host}localhost/`]) {
      const reason = reasonOf(endpoint, open);
      expect(reason).toBeDefined();
      expect(reason!.length).toBeLessThan(300);
    }
  });
});

describe("checkEndpoint: https requirement", () => {
  it("refuses http by default", () => {
    expect(reasonOf("http://example.com/hook", strict)).toBe(
      "endpoint must use https (set CAREHOOKS_ALLOW_HTTP to allow http)",
    );
  });

  it("accepts http when allowHttp is set", () => {
    expect(checkEndpoint("http://example.com/hook", open)).toMatchObject({
      ok: true,
      normalized: "http://example.com/hook",
    });
  });

  it("accepts https either way", () => {
    expect(checkEndpoint("https://example.com/hook", strict).ok).toBe(true);
    expect(checkEndpoint("https://example.com/hook", open).ok).toBe(true);
  });
});

describe("checkEndpoint: normalisation", () => {
  it.each([
    ["HTTPS://Example.COM:443/Path", "https://example.com/Path"],
    ["https://example.com", "https://example.com/"],
    ["http://EXAMPLE.com:80/a", "http://example.com/a"],
    ["https://example.com:8443/a?b=C#d", "https://example.com:8443/a?b=C"],
    ["https://example.com./x", "https://example.com/x"],
    ["https://bücher.example/hook", "https://xn--bcher-kva.example/hook"],
    ["https://[2606:4700:4700:0:0:0:0:1111]:443/", "https://[2606:4700:4700::1111]/"],
    ["https://93.184.216.34/x", "https://93.184.216.34/x"],
  ])("%s → %s", (endpoint, normalized) => {
    const result = checkEndpoint(endpoint, open);
    expect(result).toMatchObject({ ok: true, normalized });
    if (result.ok) {
      expect(result.url).toBeInstanceOf(URL);
      expect(result.url.href).toBe(normalized);
    }
  });
});

describe("allow-list", () => {
  const loopback = allowing("127.0.0.0/8");

  it.each([
    "http://127.0.0.1:9000/",
    "http://127.9.9.9/",
    "http://localhost:9000/",
    "http://api.localhost:9000/",
    "http://localhost.:9000/",
    "http://[::ffff:127.0.0.1]/",
    "http://[::ffff:7f00:1]/",
    "http://[::127.0.0.1]/", // IPv4-compatible denotes the same host
    "http://2130706433/",
    "http://0x7f.1/",
  ])("127.0.0.0/8 allows %s", (endpoint) => {
    expect(checkEndpoint(endpoint, loopback)).toMatchObject({ ok: true });
  });

  it.each([
    ["http://10.0.0.1/", "private"],
    ["http://169.254.169.254/", "cloud metadata"],
    ["http://[::1]/", "loopback"], // IPv6 loopback is a different range
    ["http://[64:ff9b::7f00:1]/", "NAT64"], // reaches a gateway, not this host
    ["http://[2002:7f00:1::]/", "6to4"],
  ])("127.0.0.0/8 still refuses %s", (endpoint, fragment) => {
    expect(reasonOf(endpoint, loopback)).toContain(fragment);
  });

  it("does not lift the cloud metadata names, https or credential rules", () => {
    expect(reasonOf("http://metadata.google.internal/", allowing("0.0.0.0/0"))).toContain("cloud metadata service");
    expect(reasonOf("http://127.0.0.1/", { ...loopback, allowHttp: false })).toContain("must use https");
    expect(reasonOf("http://u:p@127.0.0.1/", loopback)).toBe("endpoint must not contain credentials");
  });

  it("allows localhost through ::1 as well", () => {
    const ipv6Loopback = allowing("::1");
    expect(checkEndpoint("http://localhost:8080/", ipv6Loopback).ok).toBe(true);
    expect(checkEndpoint("http://[::1]:8080/", ipv6Loopback).ok).toBe(true);
    expect(checkEndpoint("http://127.0.0.1:8080/", ipv6Loopback).ok).toBe(false);
  });

  it("treats a bare address as a single host", () => {
    const one = allowing("10.1.2.3");
    expect(checkEndpoint("http://10.1.2.3/", one).ok).toBe(true);
    expect(checkEndpoint("http://10.1.2.4/", one).ok).toBe(false);
    expect(checkEndpoint("http://[::ffff:10.1.2.3]/", one).ok).toBe(true);
  });

  it("matches an IPv4-mapped CIDR against plain IPv4", () => {
    const mapped = allowing("::ffff:10.0.0.0/104");
    expect(checkEndpoint("http://10.200.0.1/", mapped).ok).toBe(true);
    expect(checkEndpoint("http://11.0.0.1/", mapped).ok).toBe(true); // global anyway
    expect(checkEndpoint("http://192.168.0.1/", mapped).ok).toBe(false);
  });

  it("allows IPv6 ranges", () => {
    const ula = allowing("fd00::/8");
    expect(checkEndpoint("http://[fd00::10]/", ula).ok).toBe(true);
    expect(checkEndpoint("http://[fe80::1]/", ula).ok).toBe(false);
  });
});

describe("parseAllowedTargets", () => {
  it("parses CIDRs and bare addresses, trimming blanks", () => {
    const targets = parseAllowedTargets([" 127.0.0.0/8", "10.1.2.3/32", "::1/128", "192.168.0.1", "fd00::/8 "]);
    expect(targets.map((target) => target.text)).toEqual([
      "127.0.0.0/8",
      "10.1.2.3/32",
      "::1/128",
      "192.168.0.1",
      "fd00::/8",
    ]);
    expect(targets.map((target) => target.range[1])).toEqual([8, 32, 128, 32, 8]);
  });

  it("accepts an empty list", () => {
    expect(parseAllowedTargets([])).toEqual([]);
  });

  it.each([
    "10.0.0.0/33",
    "::1/129",
    "10.0.0.0/",
    "10.0.0.0/08",
    "10.0.0.0/-1",
    "10.0.0.0/8/8",
    "abc",
    "example.com/32",
    "10.0.0/8",
    "0177.0.0.1/8",
    "0x7f.1",
    "256.0.0.0/8",
    "fe80::1%eth0/64",
    "[::1]/128",
    "",
    "  ",
  ])("rejects %j naming the entry", (entry) => {
    expect(() => parseAllowedTargets(["127.0.0.0/8", entry])).toThrow(`invalid allowed target "${entry}"`);
  });

  it("truncates a huge bad entry in the message", () => {
    let message = "";
    try {
      parseAllowedTargets(["x".repeat(10_000)]);
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toMatch(/^invalid allowed target "x+…"/);
    expect(message.length).toBeLessThan(300);
  });
});

describe("isAddressAllowed (connect-time check)", () => {
  it.each([
    ["93.184.216.34", true],
    ["2606:4700:4700::1111", true],
    ["::ffff:93.184.216.34", false],
    ["127.0.0.1", false],
    ["::1", false],
    ["::ffff:127.0.0.1", false],
    ["::ffff:7f00:1", false],
    ["169.254.169.254", false],
    ["fd00:ec2::254", false],
    ["fe80::1%eth0", false],
    ["10.0.0.5", false],
    ["0.0.0.0", false],
    ["::", false],
    ["", false],
    ["not-an-ip", false],
    ["[::1]", false],
    ["example.com", false],
    [" 93.184.216.34", false],
    ["93.184.216.34:443", false],
  ])("%j → %s", (address, allowed) => {
    expect(isAddressAllowed(address, open)).toBe(allowed);
  });

  it("honours the allow-list, including IPv4-mapped forms", () => {
    const policy = allowing("127.0.0.0/8", "fd00::/8");
    expect(isAddressAllowed("127.0.0.1", policy)).toBe(true);
    expect(isAddressAllowed("::ffff:127.0.0.1", policy)).toBe(true);
    // ipaddr.js reads "::127.0.0.1" as IPv4-mapped; "::7f00:1" is the same bits and must agree.
    expect(isAddressAllowed("::127.0.0.1", policy)).toBe(true);
    expect(isAddressAllowed("::7f00:1", policy)).toBe(true);
    expect(isAddressAllowed("fd00:ec2::254", policy)).toBe(true);
    expect(isAddressAllowed("::1", policy)).toBe(false);
    expect(isAddressAllowed("10.0.0.1", policy)).toBe(false);
    expect(isAddressAllowed("garbage", policy)).toBe(false);
  });

  it("never reports an unparseable address as global unicast", () => {
    expect(refusedRange("not-an-ip")).toBe("invalid address");
    expect(refusedRange("93.184.216.34")).toBeUndefined();
  });
});
