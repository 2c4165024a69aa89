/**
 * Loading `config/appliance.jsonc`: JSONC syntax, the zod schema, then checks
 * across fields (rules, users, addresses). Every problem names the file, the
 * line, the field path and the reason, e.g.
 * `config/appliance.jsonc:23: forwards[1].publicPorts: port 70000 is out of range`.
 */

import type { z } from "zod";
import { compileRules, NO_ENTRY, type RuleIndex } from "../nat/rule_index.ts";
import { validateRules } from "../nat/rule_validate.ts";
import { type Cidr, cidrContains, formatCidr, parseCidr, parseIpv4 } from "../packet/address.ts";
import { joinPath, JsoncSyntaxError, parseJsonc } from "./parse_jsonc.ts";
import { type ConfigOutput, configSchema, issueMessage } from "./schema.ts";
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

/** Reads and parses the configuration file at `path`; throws `ConfigError` when it is wrong. */
export function loadConfig(path: string): Config {
  let text: string;
  try {
    text = Deno.readTextFileSync(path);
  } catch (e) {
    const reason = e instanceof Error ? e.message : String(e);
    throw new ConfigError([{ file: path, line: 0, path: "", reason: `cannot read: ${reason}` }]);
  }
  return parseConfig(text, path);
}

/** Parses configuration `text` (named `fileName` in errors); throws `ConfigError` when it is wrong. */
export function parseConfig(text: string, fileName = "config"): Config {
  let doc;
  try {
    doc = parseJsonc(text);
  } catch (e) {
    if (!(e instanceof JsoncSyntaxError)) throw e;
    throw new ConfigError([{ file: fileName, line: e.line, path: "", reason: e.reason }]);
  }
  const report = new Reporter(fileName, doc.lines);
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
  const index = checkRules(c, lanNet, report);
  if (index) checkPortClashes(c, index, report);
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
    knock: c.knock,
    users: c.users,
    forwards: c.forwards,
    openPorts: c.openPorts,
    management: { ...c.management, listen, listenU32: parseIpv4(listen)! },
    syslog: c.syslog,
    store: c.store,
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

/** Seed users: unique names and first ports. */
function checkUsers(c: ConfigOutput, report: Reporter): void {
  const names = new Map<string, number>();
  const ports = new Map<number, string>();
  c.users.forEach((u, i) => {
    if (names.has(u.name)) report.add(`users[${i}].name`, `user "${u.name}" is defined twice`);
    names.set(u.name, i);
    const owner = ports.get(u.firstPort);
    if (owner !== undefined) {
      report.add(`users[${i}].firstPort`, `first port ${u.firstPort} is also user "${owner}"'s`);
    } else {
      ports.set(u.firstPort, u.name);
    }
  });
}

/** Rule problems (shape, names, overlaps, private hosts outside the LAN); the index when none. */
function checkRules(c: ConfigOutput, lanNet: Cidr, report: Reporter): RuleIndex | null {
  const before = report.problems.length;
  for (const p of validateRules(c.forwards, c.openPorts)) {
    report.add(`${p.list}[${p.index}].${p.field}`, p.reason);
  }
  const rules = [
    ...c.forwards.map((r, i) => ({ r, path: `forwards[${i}]` })),
    ...c.openPorts.map((r, i) => ({ r, path: `openPorts[${i}]` })),
  ];
  for (const { r, path } of rules) {
    const addr = parseIpv4(r.privateAddress);
    if (addr !== null && !cidrContains(lanNet, addr)) {
      report.add(
        `${path}.privateAddress`,
        `${r.privateAddress} is outside lan.network ${formatCidr(lanNet)}`,
      );
    }
  }
  return report.problems.length === before ? compileRules(c.forwards, c.openPorts) : null;
}

/** First knock ports and the management port must not be public ports of enabled rules. */
function checkPortClashes(c: ConfigOutput, index: RuleIndex, report: Reporter): void {
  c.users.forEach((u, i) => {
    for (const [proto, name] of [[6, "tcp"], [17, "udp"]] as const) {
      if (u.transport !== "any" && u.transport !== name) continue;
      const entry = index.lookup(proto, u.firstPort);
      if (entry !== NO_ENTRY) {
        report.add(
          `users[${i}].firstPort`,
          `first port ${u.firstPort} is a public ${name} port of rule "${index.ruleName(entry)}"`,
        );
      }
    }
    if (c.management.wanAccess === "knock" && u.firstPort === c.management.port) {
      report.add(`users[${i}].firstPort`, `first port ${u.firstPort} is the management port`);
    }
  });
  const entry = index.lookup(6, c.management.port);
  if (c.management.wanAccess === "knock" && entry !== NO_ENTRY) {
    report.add(
      "management.port",
      `port ${c.management.port} is also a public tcp port of rule "${index.ruleName(entry)}"`,
    );
  }
}
