/**
 * The LAN's IPv6 egress uplink, moved as the IPv6 gateway probes' health
 * changes: the rule `from LAN6_NET lookup TABLE` (`routing.ts`,
 * {@linkcode LAN_EGRESS6_PREF}) follows {@linkcode lanEgress6Uplink}. IPv6
 * from the LAN is not translated, so this rule is its failover, as the
 * masquerade address is IPv4's.
 */
import {
  LAN_EGRESS6_PREF,
  lanEgress6Commands,
  lanEgress6Uplink,
  type RoutingPlan,
} from "./routing.ts";

/** The fields of an uplink health event this needs (`log/events.ts`). */
export interface UplinkHealthEvent {
  type: string;
  uplink?: string;
  family?: string;
}

/** Runs one command: its exit code and standard error. */
export type RunCommand = (argv: string[]) => Promise<{ code: number; stderr: string }>;

/**
 * Keeps the LAN's IPv6 egress rule on the first masquerade uplink whose IPv6
 * gateway answers. The probes may report before `routingCommands` ran (the
 * data plane starts first): health is recorded from the start, and rules
 * move only between `installed()` (the rule is there, to the first uplink's
 * table) and `stop()`.
 */
export class LanEgress6 {
  readonly #plan: RoutingPlan;
  readonly #run: RunCommand;
  readonly #say: (line: string) => void;
  readonly #up6: boolean[];
  /** The table the installed rule points to; null before `installed()` and after `stop()`. */
  #table: number | null = null;
  #queue: Promise<void> = Promise.resolve();

  /** Every uplink counts as up until its probe says otherwise. */
  constructor(plan: RoutingPlan, run: RunCommand, say: (line: string) => void) {
    this.#plan = plan;
    this.#run = run;
    this.#say = say;
    this.#up6 = plan.uplinks.map(() => true);
  }

  /** The uplink the LAN's IPv6 leaves by now; null: the main table. */
  get uplink(): string | null {
    return lanEgress6Uplink(this.#plan, this.#up6)?.name ?? null;
  }

  /** `routingCommands` installed the rule (to the first uplink's table): from now on it moves. */
  installed(): void {
    this.#table = lanEgress6Uplink(this.#plan, this.#plan.uplinks.map(() => true))?.table ?? null;
    this.#sync();
  }

  /** Takes the IPv6 probe's `uplink-up` / `uplink-down` events and moves the rule when needed. */
  onEvents(events: readonly UplinkHealthEvent[]): void {
    let changed = false;
    for (const e of events) {
      if (e.family !== "ipv6" || (e.type !== "uplink-up" && e.type !== "uplink-down")) continue;
      const i = this.#plan.uplinks.findIndex((u) => u.name === e.uplink);
      if (i < 0) continue;
      this.#up6[i] = e.type === "uplink-up";
      changed = true;
    }
    if (changed) this.#sync();
  }

  /** No more moves; resolves when the commands under way have run (before the rules are cleared). */
  stop(): Promise<void> {
    this.#table = null;
    return this.#queue;
  }

  /** Resolves when the commands of every change so far have run. */
  settled(): Promise<void> {
    return this.#queue;
  }

  #sync(): void {
    const next = lanEgress6Uplink(this.#plan, this.#up6);
    if (this.#table === null || next === null || next.table === this.#table) return;
    const from = this.#table;
    this.#table = next.table;
    const first = lanEgress6Uplink(this.#plan, this.#plan.uplinks.map(() => true));
    const why = next === first
      ? "the first uplink's IPv6 gateway answers again"
      : "an IPv6 gateway before it is down";
    this.#queue = this.#queue.then(async () => {
      for (const argv of lanEgress6Commands(this.#plan, from, next.table)) {
        const r = await this.#run(argv).catch((e) => ({ code: -1, stderr: String(e) }));
        if (r.code !== 0) this.#say(`routing: ${argv.join(" ")}: ${r.stderr.trim()}`);
      }
      this.#say(
        `routing: LAN IPv6 egress by uplink ${next.name} (table ${next.table}, ` +
          `rule pref ${LAN_EGRESS6_PREF}): ${why}`,
      );
    });
  }
}
