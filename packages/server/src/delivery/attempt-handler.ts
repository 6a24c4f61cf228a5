/**
 * One attempt's response, as undici's dispatcher hands it over: status,
 * headers and body chunks as they arrive, with no response stream, no async
 * resource and no promise per chunk (what `request()` builds around them, and
 * an attempt does not need). The body is read up to a cap, so a receiver
 * streaming without end cannot hold a worker, and decoded only when kept.
 */
import type { IncomingHttpHeaders } from "node:http";
import type { Dispatcher } from "undici";
import type { InFlight } from "./attempt-deadlines.js";

/** What arrived: the status, the headers and the kept text. */
export interface AttemptResponse {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  /** The first `keep` bytes as UTF-8 text; "" when nothing is kept. */
  readonly body: string;
}

export interface BodyLimits {
  /** Read at most about this many bytes, then close the connection. */
  readonly max: number;
  /** Keep this many of them as text: 0 to drop the body undecoded. */
  readonly keep: number;
}

/** How the cap ends a body: by aborting the request, which closes the connection. */
class CapReached extends Error {}
const CAP_REACHED = new CapReached("response body cap reached");

/**
 * undici's dispatch handler for one attempt. It settles once: with the
 * response once the body has ended or reached its cap, or with the error that
 * ended the request (a reset, a timeout, the attempt's abort).
 */
export class AttemptHandler implements Dispatcher.DispatchHandler {
  readonly #attempt: InFlight;
  readonly #limits: (status: number) => BodyLimits;
  readonly #resolve: (response: AttemptResponse) => void;
  readonly #reject: (error: Error) => void;
  #controller: Dispatcher.DispatchController | undefined;
  #status = 0;
  #headers: IncomingHttpHeaders = {};
  #max = 0;
  #keep = 0;
  #received = 0;
  #keptBytes = 0;
  #kept: Buffer[] = [];
  #settled = false;

  /** `limits`: what to read of a body with this status (only known once the headers are in). */
  constructor(
    attempt: InFlight,
    limits: (status: number) => BodyLimits,
    resolve: (response: AttemptResponse) => void,
    reject: (error: Error) => void,
  ) {
    this.#attempt = attempt;
    this.#limits = limits;
    this.#resolve = resolve;
    this.#reject = reject;
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.#controller = controller;
    this.#attempt.attach((reason) => controller.abort(reason));
  }

  onResponseStart(_controller: Dispatcher.DispatchController, statusCode: number, headers: IncomingHttpHeaders): void {
    // 1xx informational responses come before the real one.
    if (statusCode < 200) return;
    this.#status = statusCode;
    this.#headers = headers;
    const { max, keep } = this.#limits(statusCode);
    this.#max = max;
    this.#keep = Math.min(keep, max);
    // A body nobody keeps that says it is over the cap is not read at all.
    if (this.#keep === 0 && Number(headers["content-length"]) > max) {
      this.#succeed(true);
      this.#controller?.abort(CAP_REACHED);
    }
  }

  onResponseData(_controller: Dispatcher.DispatchController, chunk: Buffer): void {
    this.#received += chunk.length;
    if (this.#keptBytes < this.#keep) {
      const part = chunk.subarray(0, this.#keep - this.#keptBytes);
      this.#kept.push(part);
      this.#keptBytes += part.length;
    }
    if (this.#received > this.#max) {
      // Unread data means the connection cannot be reused: aborting makes undici close it.
      this.#succeed(true);
      this.#controller?.abort(CAP_REACHED);
    }
  }

  onResponseEnd(): void {
    this.#succeed(false);
  }

  onResponseError(_controller: Dispatcher.DispatchController, error: Error): void {
    if (this.#settled) return;
    this.#settled = true;
    this.#kept = [];
    this.#reject(error);
  }

  #succeed(cut: boolean): void {
    if (this.#settled) return;
    // Built before settling: if it threw, undici's onResponseError would still reject.
    const body = this.#text(cut);
    this.#settled = true;
    this.#kept = [];
    this.#attempt.attach(undefined);
    this.#resolve({ status: this.#status, headers: this.#headers, body });
  }

  #text(cut: boolean): string {
    if (this.#keptBytes === 0) return "";
    const bytes = Buffer.concat(this.#kept, this.#keptBytes);
    const decoder = new TextDecoder("utf-8", { fatal: false, ignoreBOM: true });
    // When cut short, a character split at the cut is dropped rather than shown as U+FFFD.
    return cut || this.#keptBytes < this.#received ? decoder.decode(bytes, { stream: true }) : decoder.decode(bytes);
  }
}
