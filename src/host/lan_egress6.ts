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

/** Keeps the LAN's IPv6 egress rule on the first masquerade uplink whose IPv6 gateway answers. */
export class LanEgress6 {
  readonly #plan: RoutingPlan;
  readonly #run: RunCommand;
  readonly #say: (line: string) => void;
  readonly #up6: boolean[];
  #table: number | null;
  #queue: Promise<void> = Promise.resolve();

  /** Starts from every uplink up (as `routingCommands` installed the rule). */
  constructor(plan: RoutingPlan, run: RunCommand, say: (line: string) => void) {
    this.#plan = plan;
    this.#run = run;
    this.#say = say;
    this.#up6 = plan.uplinks.map(() => true);
    this.#table = lanEgress6Uplink(plan, this.#up6)?.table ?? null;
  }

  /** The uplink the LAN's IPv6 leaves by now; null: the main table. */
  get uplink(): string | null {
    return lanEgress6Uplink(this.#plan, this.#up6)?.name ?? null;
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
    if (!changed || this.#table === null) return;
    const next = lanEgress6Uplink(this.#plan, this.#up6);
    if (next === null || next.table === this.#table) return;
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

  /** Resolves when the commands of every change so far have run. */
  settled(): Promise<void> {
    return this.#queue;
  }
}
