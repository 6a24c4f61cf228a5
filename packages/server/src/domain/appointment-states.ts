/**
 * The appointment state machine: Eka Care's statuses, with the transitions carehooks allows.
 * Anything not in the table is a 409.
 *
 * | from   | to                           | call     | action    |
 * | (new)  | BK                           | create   | created   |
 * | BK     | BK                           | modify   | modified  |
 * | BK, OG | OG (from BK only)            | start    | started   |
 * | BK, OG | CM, or CMNP when not paid    | complete | completed |
 * | CMNP   | CM                           | modify with a paid payment | modified |
 * | BK, OG | CN, CND, CNS by cancelled_by | cancel   | cancelled |
 * | BK     | NS                           | no-show  | no_show   |
 */
import { conflict } from "./errors.js";
import type { AppointmentAction, AppointmentStatus } from "./event-catalog.js";

export type CancelledBy = "patient" | "doctor" | "staff";

export type AppointmentCall =
  | { readonly kind: "modify"; readonly paid: boolean }
  | { readonly kind: "start" }
  | { readonly kind: "complete"; readonly paid: boolean }
  | { readonly kind: "cancel"; readonly by: CancelledBy }
  | { readonly kind: "no_show" };

export interface Transition {
  readonly to: AppointmentStatus;
  readonly action: AppointmentAction;
}

const CANCELLED: Record<CancelledBy, AppointmentStatus> = { patient: "CN", doctor: "CND", staff: "CNS" };

/** The transition a call makes from a status, or undefined when the table has none. */
export function transitionOf(from: AppointmentStatus, call: AppointmentCall): Transition | undefined {
  const open = from === "BK" || from === "OG";
  switch (call.kind) {
    case "modify":
      if (from === "BK") return { to: "BK", action: "modified" };
      if (from === "CMNP" && call.paid) return { to: "CM", action: "modified" };
      return undefined;
    case "start":
      return from === "BK" ? { to: "OG", action: "started" } : undefined;
    case "complete":
      return open ? { to: call.paid ? "CM" : "CMNP", action: "completed" } : undefined;
    case "cancel":
      return open ? { to: CANCELLED[call.by], action: "cancelled" } : undefined;
    case "no_show":
      return from === "BK" ? { to: "NS", action: "no_show" } : undefined;
  }
}

const CALL_NAMES: Record<AppointmentCall["kind"], string> = {
  modify: "modify",
  start: "start",
  complete: "complete",
  cancel: "cancel",
  no_show: "mark as no-show",
};

/** The transition, or a 409 that says why not. */
export function mustTransition(from: AppointmentStatus, call: AppointmentCall): Transition {
  const transition = transitionOf(from, call);
  if (!transition) {
    const hint =
      call.kind === "modify" && from === "CMNP" ? " (only a paid payment may change a CMNP appointment)" : "";
    throw conflict(`cannot ${CALL_NAMES[call.kind]} an appointment in status ${from}${hint}`);
  }
  return transition;
}
