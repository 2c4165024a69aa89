/**
 * Live state: `exec portknock` (the IPs that passed the knock, as the
 * router's CLI lists them, with the WAN address each knock arrived on),
 * `unlock list|revoke IP`, `status`, `nodes` (the fleet), `flows` and `uplinks`.
 */
import type { FleetNode, Flow, Status, StoreHealth, Unlock, Uplink } from "../api_types.ts";
import { clientFor, emit, type ShellContext } from "../context.ts";
import { UsageError } from "../io.ts";
import type { Root } from "../program.ts";
import {
  flowsTable,
  nodesTable,
  statusText,
  storeText,
  unlocksTable,
  uplinksTable,
} from "../tables.ts";
import { intArg } from "./args.ts";
import { parseIpv4 } from "../../../packet/address.ts";
import { parseIpNetwork } from "../../../packet/ip_text.ts";
import type { GlobalOptions } from "../context.ts";

async function listUnlocks(ctx: ShellContext, o: GlobalOptions): Promise<void> {
  const body = await (await clientFor(ctx, o)).get<{ unlocks: Unlock[] }>("/status/unlocks");
  emit(ctx, o, body, () => unlocksTable(body.unlocks, ctx.io.now()));
}

/**
 * Ends an unlock named by an IPv4 address, an IPv6 address or an IPv6 prefix
 * (`2001:db8:1:2::/64`); an IPv6 address inside an unlocked /64 finds it.
 */
async function revoke(ctx: ShellContext, ip: string, o: GlobalOptions): Promise<void> {
  if (parseIpv4(ip) === null && !(ip.includes(":") && parseIpNetwork(ip) !== null)) {
    throw new UsageError(
      `Cannot revoke "${ip}": not an IPv4 address, an IPv6 address or an IPv6 prefix`,
    );
  }
  const api = await clientFor(ctx, o);
  const path = `/status/unlocks/${encodeURIComponent(ip)}`;
  const body = await api.request<{ unlock: Unlock }>("DELETE", path);
  emit(ctx, o, body, () => `Revoked the unlock of ${body.unlock.ip} (user ${body.unlock.user}).`);
}

/** Registers `exec portknock`, `unlock`, `status`, `nodes`, `flows` and `uplinks`. */
export function registerStatus(root: Root, ctx: ShellContext): void {
  const exec = root.command("exec").description("router-style show commands");
  exec.command("portknock").description("list the IPs that passed the knock")
    .action((_o, cmd) => listUnlocks(ctx, cmd.optsWithGlobals()));

  const unlock = root.command("unlock").description("unlocked source IPs");
  unlock.command("list").description("list the unlocked IPs (as exec portknock)")
    .action((_o, cmd) => listUnlocks(ctx, cmd.optsWithGlobals()));
  unlock.command("revoke <ip>")
    .description("end the unlock of an IP (IPv4, or an IPv6 address or prefix: 2001:db8:1:2::/64)")
    .action((ip, _o, cmd) => revoke(ctx, ip, cmd.optsWithGlobals()));

  root.command("status").description("counters, drops, conntrack, store, clock")
    .action(async (_o, cmd) => {
      const o = cmd.optsWithGlobals();
      const body = await (await clientFor(ctx, o)).get<Status>("/status");
      emit(ctx, o, body, () => statusText(body));
    });

  root.command("nodes").description("the appliances sharing the store, up or down")
    .action(async (_o, cmd) => {
      const o = cmd.optsWithGlobals();
      const body = await (await clientFor(ctx, o)).get<
        { nodes: FleetNode[]; store: StoreHealth }
      >("/nodes");
      const now = ctx.io.now();
      emit(
        ctx,
        o,
        body,
        () => `${nodesTable(body.nodes, now)}\nStore: ${storeText(body.store, now)}`,
      );
    });

  root.command("uplinks").description("WAN uplinks: addresses, gateway probe, masquerade")
    .action(async (_o, cmd) => {
      const o = cmd.optsWithGlobals();
      const body = await (await clientFor(ctx, o)).get<{ uplinks: Uplink[] }>("/uplinks");
      emit(ctx, o, body, () => uplinksTable(body.uplinks));
    });

  root.command("flows").description("tracked flows")
    .option("-n, --limit <n>", "at most this many (default 100)", intArg("limit", 1, 10000))
    .action(async (_o, cmd) => {
      const o = cmd.optsWithGlobals();
      const api = await clientFor(ctx, o);
      const body = await api.get<{ flows: Flow[] }>("/status/flows", { limit: o.limit });
      emit(ctx, o, body, () => flowsTable(body.flows));
    });
}
