/**
 * `rules list|add-forward|add-open|delete|enable|disable`: port forwards and
 * open-ports rules. Names are unique across both kinds, so `delete`,
 * `enable` and `disable` find the kind themselves.
 */
import { Option } from "@commander-js/extra-typings";
import { type ApiClient, ApiRequestError } from "../api_client.ts";
import type { Forward, OpenPorts } from "../api_types.ts";
import { clientFor, emit, type GlobalOptions, type ShellContext } from "../context.ts";
import type { Root } from "../program.ts";
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

/** The body that replaces `found` as it is, but for `enabled`. */
function replacement(found: Found, enabled: boolean): Record<string, unknown> {
  const r = found.rule;
  const common = { name: r.name, enabled, enforceKnock: r.enforceKnock, users: r.users };
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

async function setEnabled(ctx: ShellContext, name: string, enabled: boolean, o: GlobalOptions) {
  const api = await clientFor(ctx, o);
  const found = await findRule(api, name);
  const body = await api.request<Forward | OpenPorts>(
    "PUT",
    `${found.base}/${encodeURIComponent(name)}`,
    // If-Match: a concurrent change between our read and this write is refused (409).
    { body: replacement(found, enabled), headers: { "if-match": String(found.rule.version) } },
  );
  emit(ctx, o, body, () => `Rule ${name} ${enabled ? "enabled" : "disabled"}.`);
}

/** Options shared by both `add-*` commands. */
interface CommonAdd {
  knock: boolean;
  users?: string[];
  disabled?: true;
}

function common(o: CommonAdd) {
  return { enabled: !o.disabled, enforceKnock: o.knock, users: o.users ?? [] };
}

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
    .description("forward public ports on the WAN address to a LAN host")
    .requiredOption("--public <ports>", "public port or range, e.g. 52201 or 52210-52219")
    .requiredOption("--to <address[:ports]>", "LAN host and port(s), e.g. 192.0.2.12:8080")
    .addOption(
      new Option("--protocol <p>", "protocol").choices(["tcp", "udp", "both"] as const)
        .default("tcp" as const),
    )
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
    .requiredOption("--to <address>", "LAN host, e.g. 192.0.2.12")
    .requiredOption("--ports <list>", "e.g. tcp:22,udp:53,both:60000-60010 (default tcp)")
    .option("--no-knock", "admit without a knock")
    .option("--users <names>", "only these users' unlocks admit (comma-separated)", listArg)
    .option("--disabled", "create it disabled")
    .action(async (name, _o, cmd) => {
      const o = cmd.optsWithGlobals();
      const body = { name, ...common(o), privateAddress: o.to, ports: parsePortList(o.ports) };
      const rule = await (await clientFor(ctx, o)).post<OpenPorts>(OPEN, body);
      emit(ctx, o, rule, () => `Created open-ports rule ${name}.\n${rulesTable([], [rule])}`);
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
