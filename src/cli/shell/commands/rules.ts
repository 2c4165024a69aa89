/**
 * `rules list|add-forward|add-open|bind|delete|enable|disable`: port
 * forwards and open-ports rules, each bound to a WAN uplink and address (or
 * all of them: `--uplink`, `--wan-address`, `bind`). Names are unique across
 * both kinds, so `bind`, `delete`, `enable` and `disable` find the kind
 * themselves.
 */
import { Option } from "@commander-js/extra-typings";
import { type ApiClient, ApiRequestError } from "../api_client.ts";
import type { Forward, OpenPorts } from "../api_types.ts";
import { clientFor, emit, type GlobalOptions, type ShellContext } from "../context.ts";
import type { Root } from "../program.ts";
import { formatWan } from "../format.ts";
import { rulesTable } from "../tables.ts";
import { listArg, parsePortList, parsePorts, parseTarget } from "./args.ts";

const FORWARDS = "/rules/forwards";
const OPEN = "/rules/open-ports";

/** A rule found by name, with the path of its kind. */
type Found =
  | { kind: "forward"; base: string; rule: Forward }
  | { kind: "open"; base: string; rule: OpenPorts };

/** Finds rule `name` of either kind; a 404 ApiRequestError when there is none. */
export async function findRule(api: ApiClient, name: string): Promise<Found> {
  const all = await api.get<{ forwards: Forward[]; openPorts: OpenPorts[] }>("/rules");
  const f = all.forwards.find((r) => r.name === name);
  if (f !== undefined) return { kind: "forward", base: FORWARDS, rule: f };
  const o = all.openPorts.find((r) => r.name === name);
  if (o !== undefined) return { kind: "open", base: OPEN, rule: o };
  throw new ApiRequestError(404, "not_found", `rule "${name}" does not exist`);
}

/** A rule's WAN binding. */
interface WanBinding {
  uplink: string;
  wanAddress: string;
}

/** The body that replaces `found` as it is, but for what `change` sets. */
function replacement(
  found: Found,
  change: Partial<WanBinding> & { enabled?: boolean },
): Record<string, unknown> {
  const r = found.rule;
  const common = {
    name: r.name,
    enabled: change.enabled ?? r.enabled,
    uplink: change.uplink ?? r.uplink,
    wanAddress: change.wanAddress ?? r.wanAddress,
    enforceKnock: r.enforceKnock,
    users: r.users,
  };
  if (found.kind === "forward") {
    const f = found.rule;
    return {
      ...common,
      protocol: f.protocol,
      publicPorts: f.publicPorts,
      privateAddress: f.privateAddress,
      privatePorts: f.privatePorts,
    };
  }
  return { ...common, privateAddress: found.rule.privateAddress, ports: found.rule.ports };
}

/** Replaces rule `name` as read, with `change`; answers the rule as saved. */
async function change(
  ctx: ShellContext,
  name: string,
  o: GlobalOptions,
  what: Partial<WanBinding> & { enabled?: boolean },
): Promise<Forward | OpenPorts> {
  const api = await clientFor(ctx, o);
  const found = await findRule(api, name);
  return await api.request<Forward | OpenPorts>(
    "PUT",
    `${found.base}/${encodeURIComponent(name)}`,
    // If-Match: a concurrent change between our read and this write is refused (409).
    { body: replacement(found, what), headers: { "if-match": String(found.rule.version) } },
  );
}

async function setEnabled(ctx: ShellContext, name: string, enabled: boolean, o: GlobalOptions) {
  const body = await change(ctx, name, o, { enabled });
  emit(ctx, o, body, () => `Rule ${name} ${enabled ? "enabled" : "disabled"}.`);
}

/** Options shared by both `add-*` commands. */
interface CommonAdd {
  knock: boolean;
  users?: string[];
  disabled?: true;
  uplink: string;
  wanAddress: string;
}

function common(o: CommonAdd) {
  return {
    enabled: !o.disabled,
    uplink: o.uplink,
    wanAddress: o.wanAddress,
    enforceKnock: o.knock,
    users: o.users ?? [],
  };
}

const UPLINK_HELP = 'the WAN uplink it listens on (see "uplinks"), or all';
const WAN_ADDRESS_HELP = "one of the uplink's addresses, or all";

/** Registers the `rules` commands. */
export function registerRules(root: Root, ctx: ShellContext): void {
  const rules = root.command("rules").description("port forwards and open ports");

  rules.command("list").description("list every rule").action(async (_o, cmd) => {
    const o = cmd.optsWithGlobals();
    const all = await (await clientFor(ctx, o)).get<
      { forwards: Forward[]; openPorts: OpenPorts[] }
    >(
      "/rules",
    );
    emit(ctx, o, all, () => rulesTable(all.forwards, all.openPorts));
  });

  rules.command("add-forward <name>")
    .description("forward public ports on a WAN address (or every one) to a LAN host")
    .requiredOption("--public <ports>", "public port or range, e.g. 52201 or 52210-52219")
    .requiredOption(
      "--to <address[:ports]>",
      "LAN host and port(s), e.g. 192.0.2.12:8080 or [2001:db8:1::12]:8080 (NAT66)",
    )
    .addOption(
      new Option("--protocol <p>", "protocol").choices(["tcp", "udp", "both"] as const)
        .default("tcp" as const),
    )
    .option("--uplink <name>", UPLINK_HELP, "all")
    .option("--wan-address <ip>", WAN_ADDRESS_HELP, "all")
    .option("--no-knock", "admit without a knock")
    .option("--users <names>", "only these users' unlocks admit (comma-separated)", listArg)
    .option("--disabled", "create it disabled")
    .action(async (name, _o, cmd) => {
      const o = cmd.optsWithGlobals();
      const to = parseTarget(o.to);
      const body: Record<string, unknown> = {
        name,
        ...common(o),
        protocol: o.protocol,
        publicPorts: parsePorts(o.public, "public ports"),
        privateAddress: to.address,
      };
      if (to.ports !== undefined) body.privatePorts = to.ports;
      const rule = await (await clientFor(ctx, o)).post<Forward>(FORWARDS, body);
      emit(ctx, o, rule, () => `Created port forward ${name}.\n${rulesTable([rule], [])}`);
    });

  rules.command("add-open <name>")
    .description("open ports unchanged to a LAN host")
    .requiredOption("--to <address>", "LAN host, e.g. 192.0.2.12 (an IPv6 host: a pinhole)")
    .requiredOption("--ports <list>", "e.g. tcp:22,udp:53,both:60000-60010 (default tcp)")
    .option("--uplink <name>", UPLINK_HELP, "all")
    .option("--wan-address <ip>", WAN_ADDRESS_HELP, "all")
    .option("--no-knock", "admit without a knock")
    .option("--users <names>", "only these users' unlocks admit (comma-separated)", listArg)
    .option("--disabled", "create it disabled")
    .action(async (name, _o, cmd) => {
      const o = cmd.optsWithGlobals();
      const body = { name, ...common(o), privateAddress: o.to, ports: parsePortList(o.ports) };
      const rule = await (await clientFor(ctx, o)).post<OpenPorts>(OPEN, body);
      emit(ctx, o, rule, () => `Created open-ports rule ${name}.\n${rulesTable([], [rule])}`);
    });

  rules.command("bind <name> <uplink> [wan-address]")
    .description("listen on an uplink (or all) and one of its addresses (default all)")
    .action(async (name, uplink, wanAddress, _o, cmd) => {
      const o = cmd.optsWithGlobals();
      const rule = await change(ctx, name, o, { uplink, wanAddress: wanAddress ?? "all" });
      emit(ctx, o, rule, () => `Rule ${name} listens on ${formatWan(rule)}.`);
    });

  rules.command("delete <name>").description("delete a rule").action(async (name, _o, cmd) => {
    const o = cmd.optsWithGlobals();
    const api = await clientFor(ctx, o);
    const found = await findRule(api, name);
    await api.request("DELETE", `${found.base}/${encodeURIComponent(name)}`);
    emit(ctx, o, { deleted: name }, () => `Deleted rule ${name}.`);
  });

  rules.command("enable <name>").description("enable a rule")
    .action((name, _o, cmd) => setEnabled(ctx, name, true, cmd.optsWithGlobals()));
  rules.command("disable <name>").description("disable a rule")
    .action((name, _o, cmd) => setEnabled(ctx, name, false, cmd.optsWithGlobals()));
}
