/** The events a subscription can ask for. */
export const EVENT_NAMES = [
  "appointment.created",
  "appointment.updated",
  "prescription.created",
  "prescription.updated",
] as const;

export type EventName = (typeof EVENT_NAMES)[number];

export function isEventName(value: string): value is EventName {
  return (EVENT_NAMES as readonly string[]).includes(value);
}
