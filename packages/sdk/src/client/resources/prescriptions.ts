/** Prescription details (audited reads). */
import type { Prescription } from "../models.js";
import type { CallOptions, Transport } from "../transport.js";

const BASE = "/dr/v1/business/prescription";

export class PrescriptionsResource {
  readonly #http: Transport;

  constructor(http: Transport) {
    this.#http = http;
  }

  /** The current version, or version `n` (such as a `prescription.updated` event's `previous_version`). */
  get(id: string, params: { readonly version?: number } = {}, options: CallOptions = {}): Promise<Prescription> {
    const path =
      params.version === undefined
        ? `${BASE}/${encodeURIComponent(id)}`
        : `${BASE}/${encodeURIComponent(id)}/versions/${encodeURIComponent(String(params.version))}`;
    return this.#http.request({ method: "GET", path, ...options });
  }
}
