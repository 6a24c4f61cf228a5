/** Small things many tests share. */

/** A valid appointment booking body. */
export const booking = {
  doctor_id: "d",
  patient_id: "p",
  clinic_id: "c",
  start_time: "2026-12-01T09:00:00Z",
  end_time: "2026-12-01T09:30:00Z",
};

/** Polls until the probe gives a value other than undefined or false; fails after timeoutMs. */
export async function until<T>(
  probe: () => T | undefined | false | Promise<T | undefined | false>,
  timeoutMs = 15_000,
  what = "condition",
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}
