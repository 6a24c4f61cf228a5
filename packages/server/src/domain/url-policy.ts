/**
 * SSRF policy for webhook endpoints: which URLs may be registered, and which
 * resolved addresses the dispatcher may connect to. Only plain global unicast
 * passes, unless the operator's allow-list (`CAREHOOKS_ALLOWED_TARGETS`) says otherwise.
 */
import ipaddr from "ipaddr.js";

export const MAX_ENDPOINT_LENGTH = 2048;

type Address = ipaddr.IPv4 | ipaddr.IPv6;

/** One allow-list entry; `range` is what matching uses, `text` is the entry as configured. */
export type Cidr = { readonly text: string; readonly range: [Address, number] };

export interface UrlPolicy {
  readonly allowHttp: boolean;
  readonly allowedTargets: readonly Cidr[];
}

export type EndpointCheck =
  | { readonly ok: true; readonly url: URL; readonly normalized: string }
  | { readonly ok: false; readonly reason: string };

// Longest piece of user input echoed back in a reason.
const MAX_ECHO = 100;

function clip(text: string): string {
  return text.length > MAX_ECHO ? `${text.slice(0, MAX_ECHO - 1)}…` : text;
}

// --- refused ranges -------------------------------------------------------

interface V4Rule {
  readonly range: [ipaddr.IPv4, number];
  readonly name: string;
}

const v4 = (cidr: string, name: string): V4Rule => ({ range: ipaddr.IPv4.parseCIDR(cidr), name });

// First match wins, so specific entries (metadata, broadcast) precede the ranges that contain them.
const V4_RULES: readonly V4Rule[] = [
  v4("169.254.169.254/32", "cloud metadata"), // AWS, GCP, Azure, OpenStack…
  v4("100.100.100.200/32", "cloud metadata"), // Alibaba Cloud
  v4("0.0.0.0/32", "unspecified"),
  v4("0.0.0.0/8", "reserved"), // "this network"
  v4("10.0.0.0/8", "private"),
  v4("172.16.0.0/12", "private"),
  v4("192.168.0.0/16", "private"),
  v4("100.64.0.0/10", "carrier-grade NAT"),
  v4("127.0.0.0/8", "loopback"),
  v4("169.254.0.0/16", "link-local"),
  v4("192.0.0.0/24", "reserved"), // IETF protocol assignments
  v4("192.0.2.0/24", "documentation"),
  v4("198.51.100.0/24", "documentation"),
  v4("203.0.113.0/24", "documentation"),
  v4("192.88.99.0/24", "reserved"), // deprecated 6to4 relay anycast
  v4("198.18.0.0/15", "benchmarking"),
  v4("224.0.0.0/4", "multicast"),
  v4("255.255.255.255/32", "broadcast"),
  v4("240.0.0.0/4", "reserved"),
];

function v4FromWords(high: number, low: number): ipaddr.IPv4 {
  return new ipaddr.IPv4([high >> 8, high & 0xff, low >> 8, low & 0xff]);
}

interface V6Rule {
  readonly range: [ipaddr.IPv6, number];
  /** Set for ranges that are judged by an embedded IPv4 address instead of a fixed name. */
  readonly embedded?: { readonly form: string; readonly extract: (parts: readonly number[]) => ipaddr.IPv4 };
  readonly name: string;
}

const v6 = (cidr: string, name: string, embedded?: V6Rule["embedded"]): V6Rule => ({
  range: ipaddr.IPv6.parseCIDR(cidr),
  name,
  embedded,
});

const lastWords = (parts: readonly number[]): ipaddr.IPv4 => v4FromWords(parts[6] ?? 0, parts[7] ?? 0);

const V6_RULES: readonly V6Rule[] = [
  v6("fd00:ec2::254/128", "cloud metadata"), // AWS IPv6 metadata
  v6("::/128", "unspecified"),
  v6("::1/128", "loopback"),
  v6("::ffff:0:0/96", "IPv4-mapped", { form: "IPv4-mapped", extract: lastWords }),
  v6("::ffff:0:0:0/96", "IPv4-translated", { form: "IPv4-translated", extract: lastWords }),
  v6("::/96", "IPv4-compatible", { form: "IPv4-compatible", extract: lastWords }),
  v6("64:ff9b::/96", "NAT64", { form: "NAT64", extract: lastWords }),
  v6("64:ff9b:1::/48", "NAT64 local-use"),
  v6("100::/64", "discard"),
  v6("2001::/32", "Teredo"), // the embedded IPv4 is the relay's, not the target's: refuse outright
  v6("2001:2::/48", "benchmarking"),
  v6("2001:db8::/32", "documentation"),
  v6("3fff::/20", "documentation"),
  v6("2001::/23", "reserved"), // IETF protocol assignments (ORCHID, DRIP, …)
  v6("2002::/16", "6to4", { form: "6to4", extract: (parts) => v4FromWords(parts[1] ?? 0, parts[2] ?? 0) }),
  v6("fc00::/7", "unique-local"),
  v6("fe80::/10", "link-local"),
  v6("fec0::/10", "site-local"),
  v6("ff00::/8", "multicast"),
];

const SAME_HOST_FORMS: ReadonlySet<string> = new Set(["IPv4-mapped", "IPv4-translated", "IPv4-compatible"]);

// Everything outside 2000::/3 is unassigned or special-purpose, so not plain global unicast.
const V6_GLOBAL_UNICAST = ipaddr.IPv6.parseCIDR("2000::/3");

function classifyV4(address: ipaddr.IPv4): string | undefined {
  return V4_RULES.find((rule) => address.match(rule.range))?.name;
}

function classify(address: Address): string | undefined {
  if (address instanceof ipaddr.IPv4) return classifyV4(address);
  const rule = V6_RULES.find((candidate) => address.match(candidate.range));
  if (rule === undefined) return address.match(V6_GLOBAL_UNICAST) ? undefined : "reserved";
  if (rule.embedded === undefined) return rule.name;
  const inner = rule.embedded.extract(address.parts);
  const name = classifyV4(inner);
  if (name !== undefined) return `${name} via ${rule.embedded.form} ${inner.toString()}`;
  // The contract refuses the mapped and compatible spellings themselves, whatever they embed.
  return SAME_HOST_FORMS.has(rule.embedded.form) ? rule.name : undefined;
}

/** The IPv4 address an IPv6 address denotes for allow-list purposes (mapped and compatible forms only). */
function sameHostIPv4(address: ipaddr.IPv6): ipaddr.IPv4 | undefined {
  const p = address.parts;
  const zeros = p.slice(0, 5).every((word) => word === 0);
  if (!zeros) return undefined;
  if (p[5] === 0xffff) return lastWords(p);
  // ::/96 but not :: or ::1, which are IPv6's own unspecified and loopback
  if (p[5] === 0 && (p[6] !== 0 || (p[7] ?? 0) > 1)) return lastWords(p);
  return undefined;
}

// NAT64 and 6to4 are deliberately absent from sameHostIPv4: they reach a gateway, not the IPv4 host itself.
function isAllowListed(address: Address, targets: readonly Cidr[]): boolean {
  const candidates: Address[] = [address];
  if (address instanceof ipaddr.IPv6) {
    const inner = sameHostIPv4(address);
    if (inner !== undefined) candidates.push(inner);
  }
  return targets.some((target) =>
    candidates.some((candidate) => candidate.kind() === target.range[0].kind() && candidate.match(target.range)),
  );
}

function parseAddress(text: string): Address | undefined {
  try {
    return ipaddr.parse(text);
  } catch {
    return undefined;
  }
}

/** Name of the refused range an address falls in, or undefined when it is global unicast. Unparseable → "invalid address". */
export function refusedRange(address: string): string | undefined {
  const parsed = parseAddress(address);
  // Never let garbage read as "global unicast".
  if (parsed === undefined) return "invalid address";
  return classify(parsed);
}

/** For the connect-time check on a resolved address (plain IPv4/IPv6 string, no brackets). Unparseable → false. */
export function isAddressAllowed(address: string, policy: UrlPolicy): boolean {
  const parsed = parseAddress(address);
  if (parsed === undefined) return false;
  return isAllowListed(parsed, policy.allowedTargets) || classify(parsed) === undefined;
}

// --- allow-list -----------------------------------------------------------

function parseCidr(entry: string): Cidr {
  const text = entry.trim();
  const fail = (why: string): never => {
    throw new Error(`invalid allowed target "${clip(entry)}": ${why}`);
  };
  if (text === "") fail("empty entry");
  const slash = text.indexOf("/");
  const addressText = slash === -1 ? text : text.slice(0, slash);
  const prefixText = slash === -1 ? undefined : text.slice(slash + 1);
  let address: Address;
  // Strict spellings only: "0177.0.0.1" or "10.1" in an operator's config is more likely a typo than intent.
  if (ipaddr.IPv4.isValidFourPartDecimal(addressText)) address = ipaddr.IPv4.parse(addressText);
  else if (!addressText.includes("%") && ipaddr.IPv6.isValid(addressText)) address = ipaddr.IPv6.parse(addressText);
  else return fail("expected an IPv4 or IPv6 address or CIDR such as 10.0.0.0/8 or ::1/128");
  const max = address.kind() === "ipv4" ? 32 : 128;
  let prefix = max;
  if (prefixText !== undefined) {
    if (!/^(0|[1-9][0-9]{0,2})$/.test(prefixText) || Number(prefixText) > max) {
      fail(`prefix length must be a number from 0 to ${max}`);
    }
    prefix = Number(prefixText);
  }
  // An IPv4-mapped range is the IPv4 range, so it also matches plain IPv4 addresses.
  if (address instanceof ipaddr.IPv6 && address.isIPv4MappedAddress() && prefix >= 96) {
    return { text, range: [address.toIPv4Address(), prefix - 96] };
  }
  return { text, range: [address, prefix] };
}

/** Parses CIDR strings (throws Error with a clear message naming the bad entry). A bare address means /32 or /128. */
export function parseAllowedTargets(entries: readonly string[]): Cidr[] {
  return entries.map(parseCidr);
}

// --- endpoints ------------------------------------------------------------

// Resolve to loopback; judged as 127.0.0.1 / ::1 so an operator can allow them via the allow-list.
function isLoopbackName(name: string): boolean {
  return name === "localhost" || name.endsWith(".localhost") || name === "localhost.localdomain";
}

// Cloud metadata services by name; refused whatever the allow-list says, since it holds addresses, not names.
const METADATA_NAMES: ReadonlySet<string> = new Set([
  "metadata.google.internal",
  "metadata.goog",
  "instance-data",
  "instance-data.ec2.internal",
]);

const LOOPBACK_V4 = ipaddr.IPv4.parse("127.0.0.1");
const LOOPBACK_V6 = ipaddr.IPv6.parse("::1");

const refuse = (reason: string): EndpointCheck => ({ ok: false, reason });

const refusedHost = (host: string, range: string): EndpointCheck =>
  refuse(`endpoint host ${clip(host)} is in a refused range (${range}); set CAREHOOKS_ALLOWED_TARGETS to allow it`);

function checkHost(host: string, policy: UrlPolicy): EndpointCheck | undefined {
  let address: Address | undefined;
  if (host.startsWith("[") && host.endsWith("]")) {
    address = parseAddress(host.slice(1, -1));
    if (address === undefined) return refuse("endpoint must be an absolute http(s) URL");
  } else {
    // A trailing dot names the same host (and "127.0.0.1.." is left as a name by the URL parser).
    const name = host.replace(/\.+$/, "");
    if (name === "") return refuse("endpoint must be an absolute http(s) URL with a host");
    if (ipaddr.IPv4.isValid(name)) address = ipaddr.IPv4.parse(name);
    else if (METADATA_NAMES.has(name)) {
      return refuse(`endpoint host ${clip(host)} is a cloud metadata service and is always refused`);
    } else if (isLoopbackName(name)) {
      const targets = policy.allowedTargets;
      if (isAllowListed(LOOPBACK_V4, targets) || isAllowListed(LOOPBACK_V6, targets)) return undefined;
      return refusedHost(host, "loopback");
    } else {
      // Other names are judged on their resolved address at connect time (isAddressAllowed).
      return undefined;
    }
  }
  if (isAllowListed(address, policy.allowedTargets)) return undefined;
  const range = classify(address);
  return range === undefined ? undefined : refusedHost(host, range);
}

/**
 * `normalized`: lower-case scheme and host, default port dropped, no fragment, no trailing dot on the host
 * (the URL's `href`): what is stored, compared for duplicates, and delivered to.
 */
export function checkEndpoint(endpoint: string, policy: UrlPolicy): EndpointCheck {
  if (typeof endpoint !== "string") return refuse("endpoint must be an absolute http(s) URL");
  if (endpoint.length > MAX_ENDPOINT_LENGTH) {
    return refuse(`endpoint is longer than ${MAX_ENDPOINT_LENGTH} characters`);
  }
  // The URL parser silently drops tabs/newlines and trims spaces; refuse rather than register something else.
  // biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
  if (/[\u0000-\u0020\u007f]/.test(endpoint)) {
    return refuse("endpoint must not contain whitespace or control characters");
  }
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    return refuse("endpoint must be an absolute http(s) URL");
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") {
    return refuse(`endpoint must be an absolute http(s) URL, not ${clip(url.protocol)}`);
  }
  // "https:example.com" and "https:\\example.com" parse, but are not what anyone should store.
  if (!/^https?:\/\//i.test(endpoint)) return refuse("endpoint must be an absolute http(s) URL");
  // An empty userinfo ("https://@host/") parses to no credentials, but is still a credentials slot.
  if (url.username !== "" || url.password !== "" || /^https?:\/\/[^/?#]*@/i.test(endpoint)) {
    return refuse("endpoint must not contain credentials");
  }
  // Port 0 is no port: every delivery would fail to connect, so say so when it is registered.
  if (url.port === "0") return refuse("endpoint must not use port 0");
  if (url.protocol === "http:" && !policy.allowHttp) {
    return refuse("endpoint must use https (set CAREHOOKS_ALLOW_HTTP to allow http)");
  }
  const refused = checkHost(url.hostname, policy);
  if (refused !== undefined) return refused;
  // One endpoint, one spelling: no fragment (never sent), no trailing dot on the host.
  url.hash = "";
  if (url.hostname.endsWith(".")) url.hostname = url.hostname.replace(/\.+$/, "");
  const normalized = url.href;
  // Percent-encoding and punycode can grow the input past the limit.
  if (normalized.length > MAX_ENDPOINT_LENGTH) {
    return refuse(`endpoint is longer than ${MAX_ENDPOINT_LENGTH} characters once normalised`);
  }
  return { ok: true, url, normalized };
}
