/**
 * Loading `config/appliance.jsonc`: JSONC syntax, the zod schema, then checks
 * across fields (rules, users, addresses). Every problem names the file, the
 * line, the field path and the reason, e.g.
 * `config/appliance.jsonc:23: forwards[1].publicPorts: port 70000 is out of range`.
 */

import type { z } from "zod";
import { validateConfig } from "../nat/rule_validate.ts";
import { type Cidr, cidrContains, formatCidr, parseCidr, parseIpv4 } from "../packet/address.ts";
import { joinPath, JsoncSyntaxError, parseJsonc } from "./parse_jsonc.ts";
import { type ConfigOutput, configSchema, issueMessage, KNOCK_ALIASES } from "./schema.ts";
import type { Config } from "./types.ts";

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
  warnings.push(...renamed.problems);
  const parsed = configSchema.safeParse(doc.value, { error: issueMessage });
  if (!parsed.success) {
    for (const issue of parsed.error.issues) report.issue(issue);
    throw report.error();
  }
  const config = finish(parsed.data, report);
  if (report.problems.length > 0) throw report.error();
  return config;
}

/** Collects problems, finding each one's line from the document's line map. */
class Reporter {
  readonly problems: ConfigProblem[] = [];
  #file: string;
  #lines: Map<string, number>;

  constructor(file: string, lines: Map<string, number>) {
    this.#file = file;
    this.#lines = lines;
  }

  add(path: string, reason: string): void {
    this.problems.push({ file: this.#file, line: this.#lineOf(path), path, reason });
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

/** Builds the `Config` from the schema's output, reporting checks across fields. */
function finish(c: ConfigOutput, report: Reporter): Config {
  const lanNet = checkLanNetwork(c.lan.network, report);
  const lanAddr = parseIpv4(c.lan.address)!;
  const wanAddr = parseIpv4(c.wan.address)!;
  if (!cidrContains(lanNet, lanAddr)) {
    report.add("lan.address", `${c.lan.address} is outside lan.network ${formatCidr(lanNet)}`);
  }
  if (cidrContains(lanNet, wanAddr)) {
    report.add("wan.address", `${c.wan.address} is inside lan.network ${formatCidr(lanNet)}`);
  }
  checkUsers(c, report);
  checkRules(c, report);
  const listen = c.management.listen ?? c.lan.address;
  return {
    wan: { ...c.wan, addressU32: wanAddr },
    lan: { ...c.lan, addressU32: lanAddr, network: formatCidr(lanNet), networkCidr: lanNet },
    tun: c.tun,
    conntrack: c.conntrack,
    admission: {
      allow: c.admission.allow,
      allowCidrs: c.admission.allow.map((s) => parseCidr(s)!),
    },
    knock: knockSettings(c.knock),
    users: c.users,
    forwards: c.forwards,
    openPorts: c.openPorts,
    management: { ...c.management, listen, listenU32: parseIpv4(listen)! },
    syslog: c.syslog,
    store: c.store,
    ...(c.tls ? { tls: c.tls } : {}),
  };
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
function checkRules(c: ConfigOutput, report: Reporter): void {
  const problems = validateConfig({
    forwards: c.forwards,
    openPorts: c.openPorts,
    users: c.users.map((u) => ({ ...u, enabled: true })),
    network: {
      wanAddress: c.wan.address,
      lanAddress: c.lan.address,
      lanNetwork: c.lan.network,
      managementPort: c.management.port,
      managementWanAccess: c.management.wanAccess,
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
