// One signed webhook POST over undici, as the engine sends it: the raw-POST sender and the peer
// queues' workers share it, so they differ from carehooks only in what surrounds the request.
import { undici } from "./deps.mjs";
import { signedHeaders } from "./payload.mjs";

const { Pool } = undici;

/** `connections` kept-alive connections to one origin, no pipelining: the engine's Agent, per origin. */
export function poolFor(origin, connections) {
  return new Pool(origin, { connections, pipelining: 1 });
}

/**
 * Signs `body` (both signatures, as signedHeaders; user-agent carehooks/`version`), POSTs it, reads
 * the answer; resolves to the status.
 */
export async function postSigned(pool, { path, key, eventId, body, version }) {
  const res = await pool.request({
    method: "POST",
    path,
    headers: signedHeaders(key, eventId, body, version),
    body,
  });
  await res.body.text();
  return res.statusCode;
}
