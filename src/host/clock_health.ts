/**
 * Whether the system clock is synchronised: TOTP steps are 30 s, so a clock
 * that drifts makes every knock fail. Reads the kernel's NTP status through
 * `timedatectl` when present, else `adjtimex` state via /proc is not
 * available to us, so "unknown" is reported.
 */
import { run } from "./run.ts";

/** The clock's state as the appliance reports it. */
export interface ClockHealth {
  /** true: NTP-synchronised; false: known not to be; null: cannot tell. */
  synchronised: boolean | null;
  /** How it was found out, for the operator. */
  detail: string;
  /** The time the appliance reads, ms since the epoch. */
  now: number;
}

/** Asks timedatectl whether the clock is NTP-synchronised. */
export async function clockHealth(): Promise<ClockHealth> {
  const now = Date.now();
  try {
    const r = await run(["timedatectl", "show", "-p", "NTPSynchronized", "--value"]);
    const v = r.stdout.trim();
    if (r.code === 0 && (v === "yes" || v === "no")) {
      return { synchronised: v === "yes", detail: `timedatectl NTPSynchronized=${v}`, now };
    }
    return {
      synchronised: null,
      detail: "timedatectl gave no answer (no systemd-timesyncd?)",
      now,
    };
  } catch {
    return { synchronised: null, detail: "timedatectl is not installed", now };
  }
}
