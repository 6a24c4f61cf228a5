/**
 * What a failed fetch means, in words a user can act on. Node's fetch says
 * only "fetch failed"; the reason is in its `cause` (a system error code from
 * the socket, DNS or TLS layer), or the call timed out.
 */
const CAUSES: Record<string, string> = {
  ECONNREFUSED: "connection refused: is the server running on that host and port?",
  ECONNRESET: "the connection was reset by the server",
  ENOTFOUND: "the host name does not resolve (DNS): check the URL",
  EAI_AGAIN: "the host name could not be resolved right now (DNS): try again",
  EHOSTUNREACH: "the host is unreachable",
  ENETUNREACH: "the network is unreachable",
  ETIMEDOUT: "the connection timed out",
  UND_ERR_CONNECT_TIMEOUT: "the connection timed out",
  UND_ERR_HEADERS_TIMEOUT: "the server took too long to answer",
  UND_ERR_SOCKET: "the connection closed unexpectedly",
  CERT_HAS_EXPIRED: "TLS: the server's certificate has expired",
  DEPTH_ZERO_SELF_SIGNED_CERT: "TLS: the server's certificate is self-signed (set NODE_EXTRA_CA_CERTS to trust it)",
  SELF_SIGNED_CERT_IN_CHAIN: "TLS: a self-signed certificate is in the chain (set NODE_EXTRA_CA_CERTS to trust it)",
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: "TLS: the server's certificate cannot be verified",
  ERR_TLS_CERT_ALTNAME_INVALID: "TLS: the certificate does not match the host name",
  EPROTO: "TLS: protocol error (is it an http:// server behind an https:// URL?)",
};

/** The reason a request to `url` failed, e.g. "cannot reach http://127.0.0.1:8080: connection refused: …". */
export function describeNetworkError(url: string, error: unknown): string {
  return `cannot reach ${url}: ${reasonOf(error)}`;
}

function reasonOf(error: unknown): string {
  const name = (error as { name?: string })?.name;
  if (name === "TimeoutError" || name === "AbortError") return "no answer before the timeout";
  // The innermost cause with a code: fetch wraps undici's error, which may wrap the socket's.
  for (let at: unknown = error; at; at = (at as { cause?: unknown }).cause) {
    const code = (at as { code?: unknown }).code;
    if (typeof code === "string") return CAUSES[code] ?? `${code}: ${(at as Error).message}`;
  }
  return (error as Error)?.message ?? String(error);
}
