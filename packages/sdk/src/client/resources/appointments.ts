/** Appointment details (audited reads). */
import { type Appointment, type AppointmentFilters, type Page, timeParam } from "../models.js";
import { paginate } from "../pagination.js";
import type { CallOptions, Transport } from "../transport.js";

const BASE = "/dr/v1/business/appointments";

export class AppointmentsResource {
  readonly #http: Transport;

  constructor(http: Transport) {
    this.#http = http;
  }

  /** The appointment's details, such as after an `appointment.*` webhook. */
  get(id: string, options: CallOptions = {}): Promise<Appointment> {
    return this.#http.request({ method: "GET", path: `${BASE}/${encodeURIComponent(id)}`, ...options });
  }

  list(filters: AppointmentFilters = {}, options: CallOptions = {}): Promise<Page<Appointment>> {
    return this.#http.request({
      method: "GET",
      path: BASE,
      query: { ...filters, from: timeParam(filters.from), to: timeParam(filters.to) },
      ...options,
    });
  }

  iterate(filters: Omit<AppointmentFilters, "cursor"> = {}): AsyncGenerator<Appointment> {
    return paginate((cursor) => this.list({ ...filters, cursor }));
  }
}
