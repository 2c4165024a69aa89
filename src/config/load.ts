/**
 * Loading `config/appliance.jsonc`: JSONC syntax, the zod schema, then checks
 * across fields (rules, users, addresses). Every problem names the file, the
 * line, the field path and the reason, e.g.
 * `config/appliance.jsonc:23: forwards[1].publicPorts: port 70000 is out of range`.
 */

import type { z } from "zod";
import { MAX_WAN_ADDRESSES, validateConfig } from "../nat/rule_validate.ts";
import { type Cidr, cidrContains, formatCidr, parseCidr, parseIpv4 } from "../packet/address.ts";
import { canonicalIp } from "../packet/ip_text.ts";
import { formatIpv6Prefix, type Ipv6Prefix, parseIpv6Prefix } from "../packet/ipv6_address.ts";
import { joinPath, JsoncSyntaxError, parseJsonc } from "./parse_jsonc.ts";
import { uplinkGateways6 } from "./gateway6.ts";
import { ipv6Section } from "./ipv6.ts";
import { type ConfigOutput, configSchema, issueMessage, KNOCK_ALIASES } from "./schema.ts";
import type {
  Config,
  Ipv6Config,
  StoreConfig,
  UplinkAddress,
  UplinkConfig,
  UplinkProbe,
} from "./types.ts";
import { ipv6LayoutOf, layoutUplinks } from "./uplinks.ts";

/** One thing wrong with a configuration file. */
export interface ConfigProblem {
  file: string;
  /** 1-based line of the field (or of its nearest enclosing object when the field is missing). */
  line: number;
  /** Field path, e.g. `forwards[1].publicPorts`; empty for syntax errors. */
  path: string;
  reason: string;
}

/** Formats a problem as `file:line: path: reason`. */
export function formatProblem(p: ConfigProblem): string {
  return `${p.file}:${p.line}: ${p.path === "" ? "" : `${p.path}: `}${p.reason}`;
}

/** A configuration that cannot be used; `message` lists every problem, one per line. */
export class ConfigError extends Error {
  /** All problems, by line. */
  readonly problems: ConfigProblem[];
  /** An error listing `problems`. */
  constructor(problems: ConfigProblem[]) {
    super(problems.map(formatProblem).join("\n"));
    this.name = "ConfigError";
    this.problems = problems;
  }
}

/**
 * Reads and parses the configuration file at `path`; throws `ConfigError`
 * when it is wrong. What loads but should change (a deprecated field name) is
 * appended to `warnings`.
 */
export function loadConfig(path: string, warnings?: ConfigProblem[]): Config {
  let text: string;
  try {
    text = Deno.readTextFileSync(path);
  } catch (e) {
    const reason = e instanceof Error ? e.message : String(e);
    throw new ConfigError([{ file: path, line: 0, path: "", reason: `cannot read: ${reason}` }]);
  }
  return parseConfig(text, path, warnings);
}

/**
 * Parses configuration `text` (named `fileName` in errors); throws
 * `ConfigError` when it is wrong, appends warnings to `warnings`.
 */
export function parseConfig(
  text: string,
  fileName = "config",
  warnings: ConfigProblem[] = [],
): Config {
  let doc;
  try {
    doc = parseJsonc(text);
  } catch (e) {
    if (!(e instanceof JsoncSyntaxError)) throw e;
    throw new ConfigError([{ file: fileName, line: e.line, path: "", reason: e.reason }]);
  }
  const report = new Reporter(fileName, doc.lines);
  const renamed = new Reporter(fileName, doc.lines);
  renameAliases(doc.value, doc.lines, renamed, report);
  if (listLegacyWan(doc.value, doc.lines)) report.rename = legacyWanPath;
  warnings.push(...renamed.problems);
  const parsed = configSchema.safeParse(doc.value, { error: issueMessage });
  if (!parsed.success) {
    for (const issue of parsed.error.issues) report.issue(issue);
    throw report.error();
  }
  const notes = new Reporter(fileName, doc.lines);
  notes.rename = report.rename;
  const config = finish(parsed.data, report, notes);
  if (report.problems.length > 0) throw report.error();
  warnings.push(...notes.problems);
  return config;
}

/** Collects problems, finding each one's line from the document's line map. */
class Reporter {
  readonly problems: ConfigProblem[] = [];
  /** Maps a path of the parsed document back to the file's spelling of it. */
  rename: (path: string) => string = (p) => p;
  #file: string;
  #lines: Map<string, number>;

  constructor(file: string, lines: Map<string, number>) {
    this.#file = file;
    this.#lines = lines;
  }

  add(path: string, reason: string): void {
    const line = this.#lineOf(path);
    this.problems.push({ file: this.#file, line, path: this.rename(path), reason });
  }

  issue(issue: z.core.$ZodIssue): void {
    const path = joinPath(issue.path as (string | number)[]);
    if (issue.code === "unrecognized_keys") {
      for (const key of issue.keys) {
        this.add(joinPath([...issue.path as string[], key]), "unknown field");
      }
    } else {
      this.add(path, issue.message);
    }
  }

  error(): ConfigError {
    return new ConfigError(this.problems.toSorted((a, b) => a.line - b.line));
  }

  /** The line of `path`, or of the closest ancestor present in the file (a missing field). */
  #lineOf(path: string): number {
    for (let p = path;; p = p.replace(/(\.[^.[]+|\[[^\]]*\])$/, "")) {
      const line = this.#lines.get(p);
      if (line !== undefined) return line;
      if (p === "") return 1;
    }
  }
}

/**
 * Renames the deprecated `knock.*` fields to their new names in place (the
 * line map too), warning once per field; both names at once is an error.
 */
function renameAliases(
  value: unknown,
  lines: Map<string, number>,
  warn: Reporter,
  report: Reporter,
): void {
  const k = (value as { knock?: unknown } | null)?.knock;
  if (k === null || typeof k !== "object" || Array.isArray(k)) return;
  const knock = k as Record<string, unknown>;
  for (const [old, name] of Object.entries(KNOCK_ALIASES)) {
    if (!(old in knock)) continue;
    if (name in knock) {
      report.add(`knock.${old}`, `is the old name of knock.${name}, which is also set; drop it`);
      continue;
    }
    warn.add(`knock.${old}`, `is deprecated; rename it to knock.${name}`);
    knock[name] = knock[old];
    delete knock[old];
    lines.set(`knock.${name}`, lines.get(`knock.${old}`) ?? 1);
  }
}

/**
 * The single-object `wan` of earlier versions (`{ interface, address }`),
 * rewritten in place to a list of one uplink named `wan` whose address is a
 * /32 (no network was written, so none is assumed). The line map learns the
 * new paths. Returns true when it rewrote.
 */
function listLegacyWan(value: unknown, lines: Map<string, number>): boolean {
  const doc = value as { wan?: unknown } | null;
  const w = doc?.wan;
  if (w === null || typeof w !== "object" || Array.isArray(w)) return false;
  const { address, ...rest } = w as Record<string, unknown>;
  const uplink: Record<string, unknown> = { name: LEGACY_UPLINK, ...rest };
  if (address !== undefined) {
    uplink.addresses = [
      typeof address === "string" && !address.includes("/") ? `${address}/32` : address,
    ];
  }
  doc!.wan = [uplink];
  for (const [path, line] of [...lines]) {
    if (path === "wan.address") lines.set("wan[0].addresses[0]", line);
    else if (path.startsWith("wan.")) lines.set(`wan[0]${path.slice(3)}`, line);
  }
  lines.set("wan[0]", lines.get("wan") ?? 1);
  lines.set("wan[0].addresses", lines.get("wan.address") ?? lines.get("wan") ?? 1);
  return true;
}

/** The routing table that hands crossing packets to the TUN (`src/host/routing.ts`). */
const STEERING_TABLE = 100;

/** The name a single-object `wan` loads under. */
export const LEGACY_UPLINK = "wan";

/** A path of the rewritten single-object `wan`, as the file spells it. */
function legacyWanPath(path: string): string {
  return path.replace(/^wan\[0\]\.addresses(\[0\])?(?!\w)/, "wan.address").replace(
    /^wan\[0\]/,
    "wan",
  );
}

/** Most queues `"auto"` picks: past four, the one admission Worker bounds new flows anyway. */
const AUTO_QUEUES_MAX = 4;

/** `tun.queues: "auto"`: one per core, up to `AUTO_QUEUES_MAX`. */
export function autoQueues(): number {
  return Math.max(1, Math.min(AUTO_QUEUES_MAX, navigator.hardwareConcurrency || 1));
}

/** The data plane's names of the knock tunables. */
function knockSettings(k: ConfigOutput["knock"]): Config["knock"] {
  return {
    idleTimeoutSec: k.idleTimeoutSeconds,
    lifetimeSec: k.lifetimeSeconds,
    windowSec: k.sequenceWindowSeconds,
    maxFailures: k.failureLimit,
    failureWindowSec: k.failureWindowSeconds,
    penaltySec: k.penaltySeconds,
    maxInProgress: k.maxInProgress,
    maxPenalised: k.maxPenalised,
  };
}

/** Builds the `Config` from the schema's output, reporting checks across fields (and notes). */
function finish(c: ConfigOutput, report: Reporter, notes: Reporter): Config {
  const lanNet = checkLanNetwork(c.lan.network, report);
  const lanAddr = parseIpv4(c.lan.address)!;
  if (!cidrContains(lanNet, lanAddr)) {
    report.add("lan.address", `${c.lan.address} is outside lan.network ${formatCidr(lanNet)}`);
  }
  const { ipv6, addresses6, npt6 } = ipv6Section(c, report, notes);
  const wan = uplinks(c, lanNet, report);
  const gateways6 = uplinkGateways6(c, report, notes);
  wan.forEach((u, i) => {
    u.addresses6 = addresses6[i];
    u.npt6 = npt6[i];
    u.gateway6 = gateways6[i].gateway6;
    u.probe6 = gateways6[i].probe6;
  });
  const names = wan.map((u) => u.name);
  const masquerade = uplinkList(c.masquerade.uplinks, names, "masquerade.uplinks", report);
  const mgmtUplinks = uplinkList(c.management.uplinks, names, "management.uplinks", report);
  checkUsers(c, report);
  checkRules(c, wan, mgmtUplinks, ipv6, report);
  const listen = canonicalIp(c.management.listen ?? c.lan.address)!;
  return {
    wan,
    masquerade: { uplinks: masquerade },
    lan: { ...c.lan, addressU32: lanAddr, network: formatCidr(lanNet), networkCidr: lanNet },
    tun: { ...c.tun, queues: c.tun.queues === "auto" ? autoQueues() : c.tun.queues },
    conntrack: c.conntrack,
    admission: admission(c.admission.allow, ipv6.enabled, notes),
    knock: knockSettings(c.knock),
    users: c.users,
    forwards: c.forwards,
    openPorts: c.openPorts,
    management: { ...c.management, listen, listenU32: parseIpv4(listen), uplinks: mgmtUplinks },
    syslog: c.syslog,
    store: storeConfig(c.store, report),
    ...(c.tls ? { tls: c.tls } : {}),
    ipv6,
  };
}

/**
 * The allow-list split by family (see `AdmissionConfig`); with IPv6 off its
 * IPv6 networks are noted and not applied, as every IPv6 field is.
 */
function admission(allow: string[], ipv6On: boolean, notes: Reporter): Config["admission"] {
  const v4: string[] = [], v6: Ipv6Prefix[] = [];
  allow.forEach((s, i) => {
    if (parseCidr(s) !== null) v4.push(s);
    else if (ipv6On) v6.push(parseIpv6Prefix(s)!);
    else notes.add(`admission.allow[${i}]`, "is not applied: ipv6.enabled is false");
  });
  return {
    allow: v4,
    allowCidrs: v4.map((s) => parseCidr(s)!),
    allow6: v6.map(formatIpv6Prefix),
    allowPrefixes6: v6,
  };
}

/** The uplinks with their addresses parsed, checked against each other and the LAN. */
function uplinks(c: ConfigOutput, lanNet: Cidr, report: Reporter): UplinkConfig[] {
  const out: UplinkConfig[] = [];
  const seen = { names: new Map<string, number>(), ifs: new Map<string, number>() };
  const owners = new Map<number, string>();
  const tables = new Map<number, number>();
  c.wan.forEach((u, i) => {
    const at = `wan[${i}]`;
    if (u.name === "all") {
      report.add(`${at}.name`, `"all" is reserved (a rule bound to every uplink)`);
    }
    once(seen.names, u.name, i, `${at}.name`, `uplink "${u.name}" is defined twice`, report);
    once(
      seen.ifs,
      u.interface,
      i,
      `${at}.interface`,
      `interface ${u.interface} is already wan[${seen.ifs.get(u.interface)}]'s`,
      report,
    );
    if (u.interface === c.lan.interface || u.interface === c.tun.name) {
      report.add(
        `${at}.interface`,
        `interface ${u.interface} is also the ${
          u.interface === c.tun.name ? "TUN device" : "LAN interface"
        }`,
      );
    }
    const addresses = u.addresses.map((a, j) =>
      uplinkAddress(a, `${at}.addresses[${j}]`, u.name, lanNet, owners, report)
    );
    const gateway = u.gateway ?? null;
    if (gateway !== null) checkGateway(gateway, addresses, `${at}.gateway`, u.name, report);
    const table = u.table ?? 201 + i;
    if (table === STEERING_TABLE) {
      report.add(`${at}.table`, `table ${STEERING_TABLE} is the one steering packets into the TUN`);
    }
    const other = tables.get(table);
    if (other !== undefined) report.add(`${at}.table`, `table ${table} is already wan[${other}]'s`);
    tables.set(table, i);
    out.push({
      name: u.name,
      interface: u.interface,
      addresses,
      addresses6: [],
      npt6: null,
      gateway,
      probe: probeOf(u, `${at}.probe`, report),
      gateway6: null,
      probe6: null,
      table,
    });
  });
  const total = out.reduce((n, u) => n + u.addresses.length, 0);
  if (total > MAX_WAN_ADDRESSES) {
    report.add("wan", `${total} WAN addresses in all; at most ${MAX_WAN_ADDRESSES}`);
  }
  return out;
}

/** Records `key` for index `i`, reporting `reason` at `path` when it was there already. */
function once(
  seen: Map<string, number>,
  key: string,
  i: number,
  path: string,
  reason: string,
  report: Reporter,
): void {
  if (seen.has(key)) report.add(path, reason);
  else seen.set(key, i);
}

/** One `a.b.c.d/n` of an uplink: outside the LAN, not another uplink's. */
function uplinkAddress(
  written: string,
  path: string,
  uplink: string,
  lanNet: Cidr,
  owners: Map<number, string>,
  report: Reporter,
): UplinkAddress {
  const [text, len] = written.split("/");
  const addr = parseIpv4(text)!, net = parseCidr(written)!;
  if (cidrContains(lanNet, addr)) {
    report.add(path, `${text} is inside lan.network ${formatCidr(lanNet)}`);
  }
  const owner = owners.get(addr);
  if (owner !== undefined) report.add(path, `${text} is already an address of uplink "${owner}"`);
  owners.set(addr, uplink);
  return { address: text, addressU32: addr, prefixLength: Number(len), network: formatCidr(net) };
}

/** The gateway must be on one of the uplink's networks and not one of its addresses. */
function checkGateway(
  gw: string,
  addresses: UplinkAddress[],
  path: string,
  uplink: string,
  report: Reporter,
): void {
  const g = parseIpv4(gw)!;
  if (addresses.some((a) => a.addressU32 === g)) {
    report.add(path, `${gw} is an address of uplink "${uplink}" itself`);
  } else if (!addresses.some((a) => cidrContains(parseCidr(a.network)!, g))) {
    report.add(
      path,
      `${gw} is on no network of uplink "${uplink}" (${
        addresses.map((a) => a.network).join(", ")
      })`,
    );
  }
}

/** The probe: on by default when there is a gateway, aimed at it unless a target is named. */
function probeOf(
  u: ConfigOutput["wan"][number],
  path: string,
  report: Reporter,
): UplinkProbe | null {
  if (u.probe === false) return null;
  const p = u.probe ?? (u.gateway ? { intervalMs: 1000, downAfter: 3, upAfter: 2 } : undefined);
  if (p === undefined) return null;
  const target = p.target ?? u.gateway ?? null;
  if (target === null) {
    report.add(path, `uplink "${u.name}" has no gateway: name the probe's target`);
    return null;
  }
  return {
    target,
    targetU32: parseIpv4(target)!,
    intervalMs: p.intervalMs,
    downAfter: p.downAfter,
    upAfter: p.upAfter,
  };
}

/** A list of uplink names (default: every uplink in order), each known and named once. */
function uplinkList(
  list: string[] | undefined,
  names: string[],
  path: string,
  report: Reporter,
): string[] {
  if (list === undefined) return [...names];
  list.forEach((n, i) => {
    if (!names.includes(n)) {
      report.add(`${path}[${i}]`, `no uplink is named "${n}" (uplinks: ${names.join(", ")})`);
    } else if (list.indexOf(n) !== i) report.add(`${path}[${i}]`, `uplink "${n}" is listed twice`);
  });
  return list.filter((n, i) => names.includes(n) && list.indexOf(n) === i);
}

/** The LAN network, refusing host bits (`192.0.2.1/24` is almost surely a typo). */
function checkLanNetwork(network: string, report: Reporter): Cidr {
  const cidr = parseCidr(network)!;
  const written = parseIpv4(network.split("/")[0])!;
  if (written !== cidr.addr) {
    report.add("lan.network", `${network} has host bits set (did you mean ${formatCidr(cidr)}?)`);
  }
  return cidr;
}

/** Seed users: unique names (first ports are `validateConfig`'s, in `checkRules`). */
/** The store section: the KV file as before, or etcd with its fields checked together. */
function storeConfig(s: ConfigOutput["store"], report: Reporter): StoreConfig {
  const { backend, path, endpoints, prefix, tls, username, password, audit } = s;
  if (backend !== "etcd") {
    for (const [field, v] of Object.entries({ endpoints, prefix, tls, username, password })) {
      if (v !== undefined) report.add(`store.${field}`, `is only for backend "etcd"`);
    }
    return backend === undefined ? { path, audit } : { backend, path, audit };
  }
  if (endpoints === undefined) report.add("store.endpoints", `is required with backend "etcd"`);
  if ((username === undefined) !== (password === undefined)) {
    report.add(
      username === undefined ? "store.username" : "store.password",
      "username and password go together",
    );
  }
  if (tls !== undefined && (tls.cert === undefined) !== (tls.key === undefined)) {
    report.add(
      tls.cert === undefined ? "store.tls.cert" : "store.tls.key",
      "cert and key go together",
    );
  }
  return {
    backend,
    path,
    endpoints: endpoints ?? [],
    prefix: prefix ?? "/knockgate/",
    audit,
    ...(tls === undefined ? {} : { tls }),
    ...(username === undefined ? {} : { username }),
    ...(password === undefined ? {} : { password }),
  };
}

function checkUsers(c: ConfigOutput, report: Reporter): void {
  const names = new Set<string>();
  c.users.forEach((u, i) => {
    if (names.has(u.name)) report.add(`users[${i}].name`, `user "${u.name}" is defined twice`);
    names.add(u.name);
  });
}

/**
 * The rules, seed users and addressing through `validateConfig` (the same
 * validation the store runs on every write, so a file that loads also seeds):
 * each problem once, at the path of the rule or user it is about.
 */
function checkRules(
  c: ConfigOutput,
  wan: UplinkConfig[],
  mgmtUplinks: string[],
  ipv6: Ipv6Config,
  report: Reporter,
): void {
  const problems = validateConfig({
    forwards: c.forwards,
    openPorts: c.openPorts,
    users: c.users.map((u) => ({ ...u, enabled: true })),
    network: {
      wanAddress: wan[0].addresses[0].address,
      uplinks: layoutUplinks(wan, mgmtUplinks),
      lanAddress: c.lan.address,
      lanNetwork: c.lan.network,
      managementPort: c.management.port,
      managementWanAccess: c.management.wanAccess,
      ipv6: ipv6LayoutOf(ipv6, wan),
    },
  });
  for (const p of problems) {
    // A forward on the management port is reported where the port is set.
    if (p.subject.kind === "network" && p.field === "managementPort" && p.other?.kind === "rule") {
      report.add("management.port", p.reason);
      continue;
    }
    if (p.subject.kind === "rule" && p.other?.kind === "network") continue;
    if (p.mirror || p.subject.kind === "network") continue; // the LAN layout is checked above
    const path = p.subject.kind === "rule"
      ? `${p.subject.list}[${p.subject.index}].${p.field}`
      : `users[${p.subject.index}].${p.field.replace(/^knock\./, "")}`;
    report.add(path, p.reason);
  }
}
