/** Formatting of times, durations, byte counts and clock drift for the shell's tables. */

const pad = (n: number) => String(n).padStart(2, "0");

/** `ms` since the epoch as local `YYYY-MM-DD HH:MM:SS`. */
export function formatTime(ms: number): string {
  const d = new Date(ms);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** A duration in its two largest units: `2d 3h`, `4h 5m`, `6m 7s`, `8s`. */
export function formatDuration(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  const units: [number, string][] = [[86400, "d"], [3600, "h"], [60, "m"], [1, "s"]];
  const i = units.findIndex(([size]) => s >= size);
  if (i === -1) return "0s";
  const [big, bigName] = units[i];
  const head = `${Math.floor(s / big)}${bigName}`;
  if (i === units.length - 1) return head;
  const [small, smallName] = units[i + 1];
  const rest = Math.floor((s % big) / small);
  return rest === 0 ? head : `${head} ${rest}${smallName}`;
}

/** How long ago `ms` was: `12s ago`, `just now`. */
export function formatAgo(ms: number, now: number): string {
  return now - ms < 1000 ? "just now" : `${formatDuration(now - ms)} ago`;
}

/** How long until `ms`: `in 59m 48s`, or `expired`. */
export function formatUntil(ms: number, now: number): string {
  return ms <= now ? "expired" : `in ${formatDuration(ms - now)}`;
}

/** A byte count in binary units: `100 B`, `1.5 KiB`, `20.0 MiB`. */
export function formatBytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${v} B` : `${v.toFixed(1)} ${units[i]}`;
}

/** TOTP drift in steps with its sign: `-1`, `0`, `+1`. */
export function formatDrift(steps: number): string {
  return steps > 0 ? `+${steps}` : String(steps);
}

/** A port range as `52201` or `52210-52219`. */
export function formatRange(r: { start: number; end: number }): string {
  return r.start === r.end ? String(r.start) : `${r.start}-${r.end}`;
}

/** A rule's WAN binding: `all`, `isp-a` (every address of it) or `isp-a 198.51.100.2`. */
export function formatWan(r: { uplink: string; wanAddress: string }): string {
  if (r.uplink === "all") return "all";
  return r.wanAddress === "all" ? r.uplink : `${r.uplink} ${r.wanAddress}`;
}
