/**
 * Small helpers shared by the benchmark scripts: medians, rounding, CPU
 * counters from /proc.
 */

/** The median of `xs` (mean of the middle two for an even count); NaN when empty. */
export function median(xs: number[]): number {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const m = s.length >> 1;
  return s.length & 1 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Rounds to `digits` decimals. */
export function round(x: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

/** One CPU reading: a process's user+system ticks and the host's busy and total ticks. */
export interface CpuReading {
  /** Date.now() of the reading. */
  t: number;
  procTicks: number;
  hostBusy: number;
  hostTotal: number;
}

/** Clock ticks per second of /proc (USER_HZ; 100 on every Linux we run). */
export const CLK_TCK = 100;

/** utime + stime of `pid` (all its threads), in ticks; NaN when it is gone. */
export function procTicks(pid: number | null): number {
  if (pid === null) return NaN;
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    // Fields after the command name, which may hold spaces: state is field 3, utime 14, stime 15.
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return Number(f[11]) + Number(f[12]);
  } catch {
    return NaN;
  }
}

/** The host's busy and total ticks over all cores (idle and iowait count as not busy). */
export function hostTicks(): { busy: number; total: number } {
  const line = Deno.readTextFileSync("/proc/stat").split("\n")[0];
  const v = line.trim().split(/\s+/).slice(1, 9).map(Number);
  const total = v.reduce((a, b) => a + b, 0);
  return { busy: total - v[3] - v[4], total };
}

/** Reads the CPU counters every `periodMs` until stopped; windows are cut from the readings. */
export class CpuSampler {
  readonly readings: CpuReading[] = [];
  #timer: ReturnType<typeof setInterval> | undefined;

  /** Samples `pid` (null: host only). */
  constructor(readonly pid: number | null, readonly periodMs = 50) {}

  /** Starts sampling. */
  start(): void {
    this.#read();
    this.#timer = setInterval(() => this.#read(), this.periodMs);
  }

  /** Stops sampling. */
  stop(): void {
    clearInterval(this.#timer);
  }

  #read(): void {
    const h = hostTicks();
    this.readings.push({
      t: Date.now(),
      procTicks: procTicks(this.pid),
      hostBusy: h.busy,
      hostTotal: h.total,
    });
    if (this.readings.length > 100_000) this.readings.splice(0, 50_000);
  }

  /**
   * CPU use between wall times `from` and `to` (ms): the process as % of one
   * core, the host as cores busy; from the readings just inside the window.
   */
  window(from: number, to: number): { procPct: number; hostCores: number; seconds: number } {
    this.#read();
    const r = this.readings;
    const a = r.find((x) => x.t >= from);
    const b = r.findLast((x) => x.t <= to);
    if (!a || !b || b.t - a.t < 100) return { procPct: NaN, hostCores: NaN, seconds: 0 };
    const seconds = (b.t - a.t) / 1000;
    const cores = navigator.hardwareConcurrency || 1;
    return {
      procPct: round(((b.procTicks - a.procTicks) / CLK_TCK / seconds) * 100, 1),
      hostCores: round(
        ((b.hostBusy - a.hostBusy) / Math.max(1, b.hostTotal - a.hostTotal)) * cores,
      ),
      seconds: round(seconds),
    };
  }
}

/** The `p`-th percentile of `xs` (0-100, nearest rank; Infinity counts); NaN when empty. */
export function percentile(xs: number[], p: number): number {
  const s = xs.filter((x) => !Number.isNaN(x)).sort((a, b) => a < b ? -1 : a > b ? 1 : 0);
  if (s.length === 0) return NaN;
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}
