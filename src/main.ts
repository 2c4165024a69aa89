/**
 * The composition root: the one file that wires every layer. Loads the
 * configuration, starts logging, the data plane (a Worker owning the TUN
 * device), optional host routing, and stops cleanly on SIGINT/SIGTERM.
 */
import { parseArgs } from "node:util";
import { systemClock } from "./clock.ts";
import { type Config, ConfigError, defaultConfig, loadConfig } from "./config/mod.ts";
import { DatapathControl } from "./datapath/control.ts";
import { snapshotCounters } from "./datapath/counters.ts";
import type { DatapathSettings, KnockUser } from "./datapath/messages.ts";
import { clockHealth } from "./host/clock_health.ts";
import { routingCommands, type RoutingPlan, unroutingCommands } from "./host/routing.ts";
import { run } from "./host/run.ts";
import { Logger, StdoutSink, SyslogSink } from "./log/mod.ts";

const USAGE = `Usage: deno task start [-- --config FILE] [--routing]
  --config FILE   appliance configuration (JSONC); embedded defaults when absent
  --routing       install the policy routing that hands crossing packets to the TUN
                  (and remove it on exit)`;

/** The data-plane settings a configuration implies. */
export function datapathSettings(c: Config): DatapathSettings {
  return {
    wanAddress: c.wan.address,
    lanAddress: c.lan.address,
    lanNetwork: c.lan.network,
    managementPort: c.management.port,
    managementWanAccess: c.management.wanAccess,
    allow: c.admission.allow,
    maxFlows: c.conntrack.maxFlows,
    knock: c.knock,
  };
}

/** Seed users of the configuration as the data plane takes them. */
export function seedUsers(c: Config): KnockUser[] {
  return c.users.map((u) => ({
    user: u.name,
    secret: u.secret,
    firstPort: u.firstPort,
    length: u.length,
    transport: u.transport,
  }));
}

async function applyRouting(plan: RoutingPlan, undo = false): Promise<void> {
  for (const argv of undo ? unroutingCommands(plan) : routingCommands(plan)) {
    const r = await run(argv);
    if (r.code !== 0 && !undo) console.error(`routing: ${argv.join(" ")}: ${r.stderr.trim()}`);
  }
}

/** Runs the appliance until a signal; returns the exit code. */
export async function main(args: string[]): Promise<number> {
  let flags;
  try {
    flags = parseArgs({
      args,
      options: {
        config: { type: "string" },
        routing: { type: "boolean" },
        help: { type: "boolean" },
      },
    }).values;
  } catch (e) {
    console.error(`${(e as Error).message}\n${USAGE}`);
    return 2;
  }
  if (flags.help) {
    console.log(USAGE);
    return 0;
  }
  let config: Config;
  try {
    config = flags.config ? loadConfig(flags.config) : defaultConfig();
  } catch (e) {
    console.error(e instanceof ConfigError ? `Cannot start: ${e.message}` : String(e));
    return 1;
  }
  const syslog = new SyslogSink({ collectors: config.syslog, appName: "knockgate" });
  const logger = new Logger({ clock: systemClock, sinks: [new StdoutSink(), syslog] });
  const health = await clockHealth();
  if (health.synchronised !== true) {
    logger.record("clock-unsynchronised", { detail: health.detail });
  }
  const plane = await DatapathControl.start({
    device: { name: config.tun.name, mtu: config.tun.mtu, offload: config.tun.offload },
    settings: datapathSettings(config),
    forwards: config.forwards,
    openPorts: config.openPorts,
    users: seedUsers(config),
    unlocks: [],
  }, (events) => events.forEach((e) => logger.log(e)));
  const plan: RoutingPlan = {
    tun: config.tun.name,
    wanInterface: config.wan.interface,
    lanInterface: config.lan.interface,
    lanAddress: config.lan.address,
  };
  if (flags.routing) await applyRouting(plan);
  // SIGUSR2 prints the counters as one JSON line (SIGUSR1 belongs to the V8 inspector).
  Deno.addSignalListener("SIGUSR2", async () => {
    const conntrack = await plane.conntrack().catch(() => ({}));
    console.log(`status ${JSON.stringify({ ...snapshotCounters(plane.counters), conntrack })}`);
  });
  console.log(
    `appliance ready: ${config.tun.name} WAN ${config.wan.address} LAN ${config.lan.address}`,
  );
  await new Promise<void>((resolve) => {
    Deno.addSignalListener("SIGINT", resolve);
    Deno.addSignalListener("SIGTERM", resolve);
  });
  console.log("appliance stopping");
  if (flags.routing) await applyRouting(plan, true);
  await plane.stop();
  await logger.close();
  return 0;
}
