/**
 * The composition root: the one file that wires every layer. Loads the
 * configuration, starts logging, the data plane (a Worker owning the TUN
 * device), optional host routing, and stops cleanly on SIGINT/SIGTERM.
 * At start it warns where the file's users, rules and settings differ from
 * the store's; SIGHUP re-reads the file (see `config/reload.ts`).
 */
import { parseArgs } from "node:util";
import { systemClock } from "./clock.ts";
import {
  applyReload,
  type Config,
  ConfigError,
  type ConfigProblem,
  defaultConfig,
  formatProblem,
  loadConfig,
  managementUrl,
  primaryWanAddress,
  reloadPlan,
} from "./config/mod.ts";
import { DatapathControl } from "./datapath/control.ts";
import { snapshotCounters } from "./datapath/counters.ts";
import {
  markCheckpoint,
  readSnapshotFile,
  snapshotPath,
  writeSnapshotFile,
} from "./datapath/flow_snapshot.ts";
import {
  type ApiDeps,
  bootstrapStore,
  closedDatapathState,
  configDrift,
  createApp,
  FleetSync,
  KnockClaims,
  loadDatapathState,
  networkLayout,
  NodeHeartbeat,
  syncDatapath,
} from "./api/mod.ts";
import {
  AuditPruner,
  DEFAULT_AUDIT_RETENTION,
  NODE_NAME,
  openStore,
  type Store,
  StoreUnavailableError,
  UnlockJournal,
} from "./store/mod.ts";
import { APPLIANCE_VERSION } from "./api/version.ts";
import { createUi } from "../ui/mod.ts";
import { clockHealth } from "./host/clock_health.ts";
import {
  clearSteeringCommands,
  failClosedRuleset,
  localBypassCommands,
  NFT_APPLY,
  NFT_LIST_JSON,
  parseNftCounters,
  routingCommands,
  type RoutingPlan,
  systemEphemeralPorts,
  systemResolvers,
  unroutingCommands,
} from "./host/routing.ts";
import { haSocketPath, serveHaNotify } from "./host/ha_notify.ts";
import { LanEgress6 } from "./host/lan_egress6.ts";
import { run } from "./host/run.ts";
import { type ActiveTls, loadOrCreateTls } from "./host/tls.ts";
import { taskArgs } from "./cli/task_args.ts";
import { Logger, StdoutSink, SyslogSink } from "./log/mod.ts";
import { portKeyFromSecret } from "./nat/port_alloc.ts";

const USAGE = `Usage: deno task start [-- --config FILE] [--routing]
  --config FILE   appliance configuration (JSONC); embedded defaults when absent
  --store PATH    overrides store.path of the configuration: the Deno KV file, or with
                  an etcd store this node's local files (key, certificate, flow snapshot)
  --node-name N   this node's name in the fleet (GET /api/v1/nodes); default the host name
  --routing       install the fail-closed nftables table (kept on exit) and the policy
                  routing that hands crossing packets to the TUN (removed on exit)`;

/**
 * How often the whole unlock table is copied to the store (counters, idle
 * times). New and ended unlocks are written as their events arrive: at most
 * one housekeeping tick (100 ms) plus one KV commit after they take effect.
 */
const UNLOCK_SAVE_MS = 10_000;

/**
 * `wan 198.51.100.1/24` or `isp-a 198.51.100.1/26,198.51.100.2/26 isp-b 198.51.100.65/26`;
 * an uplink's IPv6 addresses (IPv6 on) follow its IPv4 ones: `wan 198.51.100.1/24,2001:db8:198::1/64`.
 */
function uplinkSummary(c: Config): string {
  return c.wan.map((u) =>
    `${u.name} ${
      [...u.addresses, ...u.addresses6].map((a) => `${a.address}/${a.prefixLength}`).join(",")
    }`
  ).join(" ");
}

/**
 * Where the management API listens: the LAN address, and the management
 * uplinks' WAN addresses too (IPv4, then IPv6 with `ipv6.enabled`) when
 * knock-unlocked WAN sources may reach it (the data plane gates those).
 */
export function managementAddresses(c: Config): string[] {
  const addrs = [c.management.listen];
  if (c.management.wanAccess !== "knock") return addrs;
  const uplinks = c.wan.filter((u) => c.management.uplinks.includes(u.name));
  const v6 = c.ipv6.enabled ? uplinks.flatMap((u) => u.addresses6) : [];
  for (const a of [...uplinks.flatMap((u) => u.addresses), ...v6]) {
    if (!addrs.includes(a.address)) addrs.push(a.address);
  }
  return addrs;
}

/**
 * Installs the fail-closed table (replacing an earlier one); it stays when
 * the process ends. Returns an error message when nft refused it.
 */
async function applyFailClosed(plan: RoutingPlan): Promise<string | null> {
  const r = await run(NFT_APPLY, failClosedRuleset(plan)).catch((e) => ({
    code: -1,
    stderr: (e as Error).message,
  }));
  return r.code === 0 ? null : `nft -f: ${r.stderr.trim()}`;
}

async function applyRouting(plan: RoutingPlan, undo = false): Promise<void> {
  // A start first clears what a crashed run left, silently: `ip rule add` does not replace.
  if (!undo) { for (const argv of clearSteeringCommands(plan)) await run(argv); }
  const cmds = undo
    ? unroutingCommands(plan)
    : [...routingCommands(plan), ...localBypassCommands(plan)];
  for (const argv of cmds) {
    const r = await run(argv);
    if (r.code !== 0 && !undo) console.error(`routing: ${argv.join(" ")}: ${r.stderr.trim()}`);
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** How long a start waits for an IPv6 management address to become usable (see `serveManagement`). */
const TENTATIVE_WAIT_MS = 10_000;

/**
 * Serves on each of `addrs` (`serve(hostname)`). An IPv6 address cannot be
 * bound while it is tentative (EADDRNOTAVAIL): duplicate address detection
 * (RFC 4862 §5.4) holds a new address for a second or more after it is
 * added, or for as long as its link is down, which a start at boot can
 * meet. Such an address is tried again for up to 10 s; a WAN IPv6 address
 * still refused then (absent, or a duplicate on its link) is left out with
 * a warning, so the LAN and the other addresses still serve; the listen
 * address, and any other error, stops the start as before.
 */
export async function serveManagement(
  addrs: string[],
  listen: string,
  serve: (hostname: string) => Deno.HttpServer,
  waitMs = TENTATIVE_WAIT_MS,
): Promise<Deno.HttpServer[]> {
  const servers: Deno.HttpServer[] = [];
  for (const hostname of addrs) {
    const end = Date.now() + waitMs;
    for (let tries = 0;; tries++) {
      try {
        servers.push(serve(hostname));
        break;
      } catch (e) {
        if (!(e instanceof Deno.errors.AddrNotAvailable) || !hostname.includes(":")) throw e;
        if (Date.now() >= end) {
          if (hostname === listen) throw e;
          console.warn(
            `management: not listening on [${hostname}]: ${(e as Error).message}; is the ` +
              `address on its interface, and past duplicate address detection?`,
          );
          break;
        }
        if (tries === 0) {
          console.log(
            `management: [${hostname}] is not usable yet (tentative?): waiting up to ${
              waitMs / 1000
            } s`,
          );
        }
        await sleep(200);
      }
    }
  }
  return servers;
}

/** Runs the appliance until a signal; returns the exit code. */
export async function main(args: string[]): Promise<number> {
  let flags;
  try {
    flags = parseArgs({
      args: taskArgs(args),
      options: {
        config: { type: "string" },
        routing: { type: "boolean" },
        store: { type: "string" },
        "node-name": { type: "string" },
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
  const warnings: ConfigProblem[] = [];
  try {
    config = flags.config ? loadConfig(flags.config, warnings) : defaultConfig();
  } catch (e) {
    console.error(e instanceof ConfigError ? `Cannot start: ${e.message}` : String(e));
    return 1;
  }
  for (const w of warnings) console.warn(`config: ${formatProblem(w)}`);
  const plan: RoutingPlan = {
    tun: config.tun.name,
    uplinks: config.wan,
    lanInterface: config.lan.interface,
    lanAddress: config.lan.address,
    lanNetwork: config.lan.network,
    resolvers: systemResolvers(),
    ephemeralPorts: systemEphemeralPorts(),
    ipv6: config.ipv6,
    masquerade: config.masquerade.uplinks,
  };
  // Fail closed first: nothing is forwarded unless it crosses the TUN, with or without us.
  const nftError = flags.routing ? await applyFailClosed(plan) : null;
  // The LAN's IPv6 egress rule follows the IPv6 gateway probes (no gateway6: nothing moves).
  const egress6 = flags.routing ? new LanEgress6(plan, run, (l) => console.log(l)) : null;
  if (nftError) {
    console.error(`Cannot start: the fail-closed table: ${nftError}`);
    return 1;
  }
  const nodeName = flags["node-name"] ?? Deno.hostname();
  if (!NODE_NAME.test(nodeName)) {
    console.error(
      `Cannot start: node name ${JSON.stringify(nodeName)}: use --node-name NAME ` +
        `(letters, digits, ".", "_", "-"; up to 63)`,
    );
    return 1;
  }
  let syslog = new SyslogSink({ collectors: config.syslog, appName: "knockgate" });
  const logger = new Logger({ clock: systemClock, sinks: [new StdoutSink(), syslog] });
  const health = await clockHealth();
  if (health.synchronised !== true) {
    logger.record("clock-unsynchronised", { detail: health.detail });
  }
  const storePath = flags.store ?? config.store.path;
  let tls: ActiveTls;
  try {
    tls = await loadOrCreateTls({
      configured: config.tls,
      storePath,
      ips: [config.lan.address, ...managementAddresses(config), primaryWanAddress(config)],
    });
  } catch (e) {
    console.error(`Cannot start: TLS: ${(e as Error).message}`);
    return 1;
  }
  // With etcd, --store moves only this node's local files; the cluster stays the configured one.
  const target = flags.store === undefined
    ? config.store
    : config.store.backend === "etcd"
    ? { ...config.store, path: flags.store }
    : flags.store;
  let store: Store;
  try {
    // With etcd down a node starts closed (no rules: nothing crosses) and loads once it answers.
    store = await openStore(target, {
      network: networkLayout(config),
      startUnreachable: true,
      onUnreachable: (why, waiting) =>
        console.warn(
          `store: ${why}: ${
            waiting ? "waiting for one (a first start must learn the cluster's key)" : "starting " +
              "closed (nothing forwarded, management 503) until one answers"
          }`,
        ),
    });
  } catch (e) {
    console.error(`Cannot start: ${(e as Error).message}`);
    return 1;
  }
  const loaded = store.health().loaded !== false;
  const firstRead = async () => {
    const admin = await bootstrapStore(store, config, logger);
    if (admin) {
      console.log(
        `Initial administrator (shown once): user=${admin.name} password=${admin.password} ` +
          `totp-secret=${admin.totpSecret}`,
      );
    }
    // The file only seeds an empty store: say where it and the store disagree.
    if (flags.config) {
      for (const line of await configDrift(store, config, flags.config)) console.warn(line);
    }
  };
  if (loaded) await firstRead();
  // Collectors live in the store's settings (seeded from the file); follow their changes.
  const applySyslog = async () => {
    const { collectors } = (await store.settings.getSettings()).syslog;
    const next = new SyslogSink({ collectors, appName: "knockgate" });
    logger.addSink(next);
    logger.removeSink(syslog);
    const old = syslog;
    syslog = next;
    await old.close();
  };
  if (loaded) await applySyslog();
  const state = loaded ? await loadDatapathState(store, config) : closedDatapathState(config);
  // A fleet (etcd): every knock's step is claimed across the nodes before it unlocks.
  const shared = store.health().backend === "etcd";
  // The unlock table and the verifier's state live in the data plane; the store keeps a copy.
  const journal = new UnlockJournal(
    store.unlocks,
    () => state.settings.knock.idleTimeoutSec * 1000,
    { shared },
  );
  const saveFailed = (what: string) => (e: Error) =>
    console.error(`cannot save the ${what}: ${e.message}`);
  // The flow table beside the store: saved on stop, checkpointed while running, restored here.
  const flowsPath = snapshotPath(flags.store ?? config.store.path);
  const savedFlows = flowsPath
    ? await readSnapshotFile(flowsPath).catch((e) => {
      console.error(`cannot read the flow table snapshot: ${(e as Error).message}`);
      return null;
    })
    : null;
  let flowWrites = Promise.resolve();
  const saveFlows = (snapshot: Uint8Array) => {
    if (!flowsPath) return;
    flowWrites = flowWrites.then(() => writeSnapshotFile(flowsPath, snapshot)).catch(
      saveFailed("flow table"),
    );
  };
  // A crash before this run's first checkpoint must not restore its windows as exact.
  if (savedFlows) saveFlows(markCheckpoint(savedFlows.slice()));
  const plane = await DatapathControl.start(
    {
      device: {
        name: config.tun.name,
        mtu: config.tun.mtu,
        offload: config.tun.offload,
        queues: config.tun.queues,
      },
      ...state,
      unlocks: loaded ? await store.unlocks.listUnlocks() : [],
      knockState: loaded ? await store.knockState.list() : [],
      // Its flows' rules are not known yet: a start closed forgets them.
      flows: loaded ? savedFlows : null,
      tcpShare: config.conntrack.tcpShare,
      knockClaims: shared,
      // Every node holding the store's key remaps a clashing masquerade flow alike (HA pickup).
      portKey: await Deno.readFile(`${storePath}.key`).then(portKeyFromSecret, () => undefined),
    },
    (events) => {
      events.forEach((e) => logger.log(e));
      egress6?.onEvents(events);
      journal.apply(events).catch(saveFailed("unlock table"));
    },
    (records) => store.knockState.save(records).catch(saveFailed("knock state")),
    saveFlows,
  );
  const claims = new KnockClaims(store, plane, systemClock);
  plane.onClaims = (c) =>
    claims.handle(c).catch((e) => console.error(`knock claims: ${(e as Error).message}`));
  const r = plane.restored;
  if (r?.error) console.error(`cannot restore the flow table: ${r.error}`);
  else if (r) {
    console.log(
      `flow table restored: ${r.restored} flows (${r.skipped} expired or refused) from ` +
        `${r.final ? "the snapshot of a clean stop" : "a checkpoint"} taken ` +
        `${new Date(r.savedAt * 1000).toISOString()}`,
    );
  }
  // keepalived's transitions (an HA pair): windows went stale while the peer carried the flows.
  const haPath = haSocketPath(storePath);
  const haNotify = haPath
    ? await serveHaNotify(haPath, async (vrrp) => {
      const n = await plane.loosenTcp();
      console.log(`ha: keepalived reports ${vrrp.toUpperCase()}: ${n} TCP flows loosened`);
      return `${n} TCP flows loosened`;
    }).catch((e) => {
      console.error(`ha: no keepalived notifications: ${(e as Error).message}`);
      return null;
    })
    : null;
  const saveUnlocks = async () => {
    if (store.health().loaded === false) return;
    await journal.snapshot(() => plane.unlocks()).catch(saveFailed("unlock table"));
  };
  const saver = setInterval(() => {
    saveUnlocks();
    store.sessions.purgeExpired().catch(() => {});
  }, UNLOCK_SAVE_MS);
  // Every node's changes (etcd's watch) reach this data plane; this node joins the registry.
  const fleet = new FleetSync({
    store,
    datapath: plane,
    config,
    onSettings: applySyslog,
    onError: (e) => console.error(`fleet sync: ${e.message}`),
  });
  fleet.start();
  // What other nodes wrote between the first read and the subscription.
  if (loaded && shared) fleet.note(["users", "rules", "settings", "unlocks", "knockState"]);
  // The audit log's retention, hourly; nodes sharing a store take turns.
  const pruner = new AuditPruner(
    store.audit,
    config.store.audit ?? DEFAULT_AUDIT_RETENTION,
    (e) => console.error(`audit pruning: ${e.message}`),
  );
  if (loaded) pruner.start();
  // Started closed: the store's first answer loads everything, then the node admits.
  const storeFailed = loaded ? new Promise<never>(() => {}) : store.ready.then(async () => {
    // The store may go away again meanwhile: retry the first read until it lands.
    for (;;) {
      try {
        await firstRead();
        break;
      } catch (e) {
        if (!(e instanceof StoreUnavailableError)) throw e;
      }
      await sleep(1000);
    }
    fleet.note(["users", "rules", "settings", "unlocks", "knockState"]);
    await fleet.idle();
    pruner.start();
    console.log("store: read; users, rules and settings applied: admitting");
    return new Promise<never>(() => {});
  });
  const node = new NodeHeartbeat(
    {
      name: nodeName,
      url: managementUrl(config),
      version: APPLIANCE_VERSION,
      startedAt: systemClock.now(),
    },
    store,
    plane,
    systemClock,
  );
  node.start();
  const deps: ApiDeps = {
    store,
    node,
    datapath: plane,
    logger,
    clock: systemClock,
    config,
    clockHealth,
    // The fail-closed table's packets by rule (spoofed sources, WAN input, stealth), for /metrics.
    hostCounters: flags.routing
      ? async () => parseNftCounters((await run(NFT_LIST_JSON)).stdout)
      : undefined,
    tls: { active: tls.info, source: tls.source, paths: tls.paths, pending: null },
    onChange: async (what) => {
      await syncDatapath(store, plane, config);
      if (what === "settings") await applySyslog();
      await saveUnlocks();
    },
  };
  const app = createApp(deps);
  // The web UI and the knock page, mounted before the first request builds the route table.
  app.route("/", createUi(deps, { api: app }));
  if (flags.routing) await applyRouting(plan);
  egress6?.installed();
  // TLS only: a plain-HTTP request to the port fails its handshake (no redirect listener).
  const servers = await serveManagement(
    managementAddresses(config),
    config.management.listen,
    (hostname) =>
      Deno.serve({
        hostname,
        port: config.management.port,
        cert: tls.cert,
        key: tls.key,
        onListen: () => {},
      }, app.fetch),
  );
  // SIGUSR2 prints the counters as one JSON line (SIGUSR1 belongs to the V8 inspector).
  Deno.addSignalListener("SIGUSR2", async () => {
    const conntrack = await plane.conntrack().catch(() => ({}));
    const device = await plane.device().catch(() => ({}));
    // The fail-closed table's drops by rule (spoofed sources, WAN input, stealth).
    const nft = flags.routing ? await run(NFT_LIST_JSON).catch(() => null) : null;
    const host = nft ? parseNftCounters(nft.stdout) : {};
    const queues = plane.workerCounters().map((c) => snapshotCounters(c).stats);
    const counters = {
      ...snapshotCounters(plane.counters),
      conntrack,
      device,
      host,
      queues,
      claims: claims.stats,
    };
    console.log(`status ${JSON.stringify(counters)}`);
  });
  // SIGHUP re-reads the file: the allow-list applies, the network needs a restart.
  const reload = async () => {
    if (!flags.config) {
      console.log("reload: no --config file; syslog reopened");
      await applySyslog();
      return;
    }
    const notes: ConfigProblem[] = [];
    let next: Config;
    try {
      next = loadConfig(flags.config, notes);
    } catch (e) {
      const why = e instanceof ConfigError ? e.message : String(e);
      console.error(`reload: ${flags.config} not applied, nothing changed:\n${why}`);
      return;
    }
    for (const w of notes) console.warn(`config: ${formatProblem(w)}`);
    const plan = reloadPlan(config, next);
    for (const field of plan.restart) console.warn(`reload: ${field} needs a restart`);
    applyReload(config, next);
    await syncDatapath(store, plane, config);
    await applySyslog();
    for (const line of await configDrift(store, next, flags.config)) console.warn(line);
    const applied = plan.apply.length > 0 ? plan.apply.join(", ") : "nothing new";
    console.log(
      `reload: ${flags.config} read; applied ${applied}; syslog reopened; ` +
        `${plan.restart.length} field(s) need a restart`,
    );
  };
  Deno.addSignalListener("SIGHUP", () => {
    reload().catch((e) => console.error(`reload: failed: ${(e as Error).message}`));
  });
  console.log(
    `management certificate (${tls.source} ${tls.paths.cert}) SHA-256 fingerprint ` +
      tls.info.fingerprint,
  );
  console.log(
    `appliance ready: ${config.tun.name} WAN ${uplinkSummary(config)} LAN ${config.lan.address} ` +
      `management ${managementUrl(config)}`,
  );
  const failure = await Promise.race([
    new Promise<null>((resolve) => {
      Deno.addSignalListener("SIGINT", () => resolve(null));
      Deno.addSignalListener("SIGTERM", () => resolve(null));
    }),
    plane.failed.then((f) => `data plane failed (${f})`),
    storeFailed.catch((e: Error) => `store: ${e.message}`),
  ]);
  // A Worker that failed leaves its queue unread: stop whole (fail closed) for a clean restart.
  if (failure !== null) console.error(`${failure}: stopping the appliance`);
  console.log("appliance stopping");
  clearInterval(saver);
  await node.stop();
  await pruner.stop();
  await fleet.stop();
  await Promise.all(servers.map((srv) => srv.shutdown()));
  await haNotify?.close();
  await saveUnlocks();
  await egress6?.stop();
  if (flags.routing) await applyRouting(plan, true);
  await plane.stop();
  await flowWrites;
  await store.knockState.flushed();
  store.close();
  await logger.close();
  return failure === null ? 0 : 1;
}
