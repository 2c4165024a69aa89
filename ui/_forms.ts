/**
 * Posted form fields -> API request bodies. Only what a form's text needs
 * turning into is checked here (a port range, a whole number, an empty
 * required field); everything else the API checks, naming the field.
 */
import { parsePortList, parsePortRange } from "./_format.js";
import type { Problem } from "./_problems.ts";

/** Posted fields by name (see `valuesOf`). */
export type Values = ReadonlyMap<string, readonly string[]>;

/** A request body and the problems found while reading it. */
export interface Parsed {
  body: Record<string, unknown>;
  problems: Problem[];
}

function text(v: Values, name: string): string {
  return v.get(name)?.[0] ?? "";
}

function isChecked(v: Values, name: string): boolean {
  return v.has(name);
}

/** A whole number from `name`, or a problem. */
function whole(v: Values, name: string, problems: Problem[], empty = "Enter a number"): number {
  const t = text(v, name).trim();
  if (!/^\d{1,9}$/.test(t)) {
    problems.push({ field: name, message: t === "" ? empty : `"${t}" is not a whole number` });
    return 0;
  }
  return Number(t);
}

/** The sign-in form. */
export function loginBody(v: Values): Parsed {
  const problems: Problem[] = [];
  const username = text(v, "username").trim();
  const password = text(v, "password");
  const code = text(v, "code").replace(/\s+/g, "");
  if (username === "") problems.push({ field: "username", message: "Enter your user name" });
  if (password === "") problems.push({ field: "password", message: "Enter your password" });
  if (!/^\d{6}$/.test(code)) {
    problems.push({ field: "code", message: "Enter the 6 digits your authenticator shows" });
  }
  return { body: { username, password, code }, problems };
}

/** The TOTP verification form. */
export function codeBody(v: Values): Parsed {
  const code = text(v, "code").replace(/\s+/g, "");
  const problems = /^\d{6}$/.test(code)
    ? []
    : [{ field: "code", message: "Enter the 6 digits the authenticator shows" }];
  return { body: { code }, problems };
}

/** A port-forward or open-ports form. */
export function ruleBody(kind: "forwards" | "open-ports", v: Values): Parsed {
  const problems: Problem[] = [];
  const body: Record<string, unknown> = {
    name: text(v, "name").trim(),
    enabled: isChecked(v, "enabled"),
    privateAddress: text(v, "privateAddress").trim(),
    enforceKnock: isChecked(v, "enforceKnock"),
    users: [...(v.get("users") ?? [])],
  };
  if (body.name === "") problems.push({ field: "name", message: "Enter a name" });
  // The WAN pickers; a form without them (an older page) leaves the binding to the API's default.
  if (v.has("uplink")) body.uplink = text(v, "uplink");
  if (v.has("uplink") || v.has("wanAddress")) body.wanAddress = text(v, "wanAddress") || "all";
  if (kind === "forwards") {
    body.protocol = text(v, "protocol");
    const pub = parsePortRange(text(v, "publicPorts"));
    if (typeof pub === "string") problems.push({ field: "publicPorts", message: pub });
    else body.publicPorts = pub;
    const privText = text(v, "privatePorts").trim();
    if (privText !== "") {
      const priv = parsePortRange(privText);
      if (typeof priv === "string") problems.push({ field: "privatePorts", message: priv });
      else body.privatePorts = priv;
    }
  } else {
    const ports = parsePortList(text(v, "ports"));
    if (typeof ports === "string") problems.push({ field: "ports", message: ports });
    else body.ports = ports;
  }
  return { body, problems };
}

/** The add (`editing` false) or edit user form. */
export function userBody(v: Values, editing: boolean): Parsed {
  const problems: Problem[] = [];
  const body: Record<string, unknown> = {};
  if (!editing) {
    body.name = text(v, "name").trim();
    if (body.name === "") problems.push({ field: "name", message: "Enter a user name" });
  }
  const password = text(v, "password");
  if (!editing || password !== "") {
    if (password.length < 8) {
      problems.push({ field: "password", message: "Use at least 8 characters" });
    }
    body.password = password;
  }
  body.role = text(v, "role");
  const enabled = isChecked(v, "knock.enabled");
  const knock: Record<string, unknown> = { enabled };
  if (v.has("knock.length")) knock.length = Number(text(v, "knock.length"));
  if (v.has("knock.transport")) knock.transport = text(v, "knock.transport");
  if (enabled || text(v, "knock.firstPort").trim() !== "") {
    knock.firstPort = whole(v, "knock.firstPort", problems, "Enter the first knock port (1-65535)");
  }
  body.knock = knock;
  const rules = [...(v.get("allowedRules") ?? [])];
  body.allowedRules = rules.includes("*") ? ["*"] : rules;
  return { body, problems };
}

/** The indexes of the syslog collector rows posted, in order. */
export function collectorIndexes(v: Values): number[] {
  const seen = new Set<number>();
  for (const k of v.keys()) {
    const m = /^syslog\.collectors\.(\d+)\.host$/.exec(k);
    if (m) seen.add(Number(m[1]));
  }
  return [...seen].sort((a, b) => a - b);
}

/** The settings form (collectors renumbered 0..n-1 in the order posted). */
export function settingsBody(v: Values): Parsed {
  const problems: Problem[] = [];
  const int = (name: string) => whole(v, name, problems);
  const collectors = collectorIndexes(v).map((i, n) => {
    const base = `syslog.collectors.${i}`;
    const host = text(v, `${base}.host`).trim();
    if (host === "") {
      problems.push({
        field: `syslog.collectors.${n}.host`,
        message: "Enter a host name or address",
      });
    }
    const before = problems.length;
    const port = int(`${base}.port`);
    if (problems.length > before) problems[before].field = `syslog.collectors.${n}.port`;
    return { host, port, format: text(v, `${base}.format`) };
  });
  const body = {
    idleTimeoutSeconds: int("idleTimeoutSeconds"),
    knock: {
      sequenceWindowSeconds: int("knock.sequenceWindowSeconds"),
      failureLimit: int("knock.failureLimit"),
      failureWindowSeconds: int("knock.failureWindowSeconds"),
      penaltySeconds: int("knock.penaltySeconds"),
    },
    limits: {
      maxConnections: int("limits.maxConnections"),
      maxUnlocks: int("limits.maxUnlocks"),
      maxPendingKnocks: int("limits.maxPendingKnocks"),
    },
    syslog: { collectors },
  };
  return { body, problems };
}

/** The new-token form. */
export function tokenBody(v: Values): Parsed {
  const problems: Problem[] = [];
  const t = text(v, "ttlDays").trim();
  if (t === "") return { body: {}, problems };
  const days = whole(v, "ttlDays", problems);
  return { body: { ttlDays: days }, problems };
}
