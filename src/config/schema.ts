/**
 * The zod schema of `config/appliance.jsonc`: field shapes, ranges and
 * defaults. Objects are strict, so a misspelt field is an error rather than
 * silently ignored. Checks across fields live in `load.ts`.
 */

import { z } from "zod";
import { parseCidr, parseIpv4 } from "../packet/address.ts";
import { parseIpv6, parseIpv6Prefix } from "../packet/ipv6_address.ts";
import { parsePortRange } from "../nat/rule_validate.ts";
import type { PortRange } from "../nat/rule.ts";

/** An integer in `[min, max]`. */
function int(min: number, max: number) {
  return z.number().int().min(min).max(max);
}

/** Interface names: what the kernel accepts (IFNAMSIZ is 16 with the NUL). */
const ifName = z.string().regex(/^[A-Za-z0-9_.-]{1,15}$/, {
  error: "must be 1-15 letters, digits, '_', '.' or '-'",
});

/** A dotted quad. */
const ipv4 = z.string().refine((s) => parseIpv4(s) !== null, {
  error: (iss) => `${JSON.stringify(iss.input)} is not an IPv4 address`,
});

/** `a.b.c.d/n`, or a bare address meaning /32. */
const cidr = z.string().refine((s) => parseCidr(s) !== null, {
  error: (iss) => `${JSON.stringify(iss.input)} is not an IPv4 network (a.b.c.d/n)`,
});

/** A dotted quad or an IPv6 address (no brackets, no zone). */
const ipAny = z.string().refine((s) => parseIpv4(s) !== null || parseIpv6(s) !== null, {
  error: (iss) => `${JSON.stringify(iss.input)} is not an IPv4 or IPv6 address`,
});

/** `a.b.c.d/n` or `2001:db8::/n`; a bare address is a host network. */
const cidrAny = z.string().refine(
  (s) => parseCidr(s) !== null || (s.includes(":") && parseIpv6Prefix(s) !== null),
  {
    error: (iss) =>
      `${JSON.stringify(iss.input)} is not an IPv4 or IPv6 network (a.b.c.d/n, 2001:db8::/n)`,
  },
);

/** An IPv6 address in RFC 4291 text (`2001:db8::1`), without prefix or zone. */
const ipv6 = z.string().refine((s) => parseIpv6(s) !== null, {
  error: (iss) => `${JSON.stringify(iss.input)} is not an IPv6 address`,
});

/** `2001:db8::1/64`: an IPv6 address with its prefix length written out, host bits kept. */
const ipv6AddressPrefix = z.string().refine(
  (s) => /^[^/]+\/\d{1,3}$/.test(s) && parseIpv6Prefix(s) !== null,
  {
    error: (iss) =>
      `${JSON.stringify(iss.input)} is not an IPv6 address with prefix length (2001:db8::1/64)`,
  },
);

/** `2001:db8:1::/64`: an IPv6 network (host bits are checked in `load.ts`). */
const ipv6Network = z.string().refine(
  (s) => /^[^/]+\/\d{1,3}$/.test(s) && parseIpv6Prefix(s) !== null,
  { error: (iss) => `${JSON.stringify(iss.input)} is not an IPv6 network (2001:db8:1::/64)` },
);

/** A port or range written as a number, `"N"` or `"A-B"`. */
const ports = z.union([z.number(), z.string()], {
  error: (iss) => (iss.input === undefined ? "is required" : 'must be a port, "N" or "A-B"'),
}).transform((v, ctx): PortRange => {
  const r = parsePortRange(v);
  if ("error" in r) {
    ctx.addIssue({ code: "custom", message: r.error, input: v });
    return z.NEVER;
  }
  return r.range;
});

/** A single port 1..65535. */
const port = int(1, 65535);

/** Rule names, as `rule_validate` also checks. */
const ruleName = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, {
  error: "must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit",
});

/** User names. */
const userName = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/, {
  error: "must be 1-64 letters, digits, '.', '_', '@' or '-', starting with a letter or digit",
});

const protocol = z.enum(["tcp", "udp", "both"]);

/** Uplink names; "all" is what a rule binds to when it names none. */
const uplinkName = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$/, {
  error: "must be 1-32 letters, digits, '.', '_' or '-', starting with a letter or digit",
});

/** `a.b.c.d/n` with the prefix written out: an address on its network, host bits kept. */
const addressPrefix = z.string().refine(
  (s) => /^[^/]+\/\d{1,2}$/.test(s) && parseCidr(s) !== null && parseIpv4(s.split("/")[0]) !== null,
  {
    error: (iss) => `${JSON.stringify(iss.input)} is not an address with prefix length (a.b.c.d/n)`,
  },
);

/** A rule's uplink binding: "all" or an uplink's name, and "all" or one of its addresses. */
const uplinkBinding = {
  uplink: z.string().min(1).default("all"),
  wanAddress: z.string().min(1).default("all"),
};

/** The gateway health probe (ICMP echo); `false` switches it off. */
const probe = z.union([
  z.literal(false),
  z.strictObject({
    /** Default: the gateway. */
    target: ipv4.optional(),
    intervalMs: int(100, 60_000).default(1000),
    downAfter: int(1, 100).default(3),
    upAfter: int(1, 100).default(2),
  }),
]);

/** The IPv6 gateway's health probe (ICMPv6 echo); `false` switches it off. */
const probe6 = z.union([
  z.literal(false),
  z.strictObject({
    /** Default: the IPv6 gateway. */
    target: ipv6.optional(),
    intervalMs: int(100, 60_000).default(1000),
    downAfter: int(1, 100).default(3),
    upAfter: int(1, 100).default(2),
  }),
]);

/** One WAN uplink: an interface, its public addresses and its next hop. */
const uplink = z.strictObject({
  name: uplinkName,
  interface: ifName,
  addresses: z.array(addressPrefix).min(1).max(64),
  /** Its IPv6 addresses with prefix lengths; used only with `ipv6.enabled`. */
  addresses6: z.array(ipv6AddressPrefix).max(64).default([]),
  /** NPTv6 (RFC 6296): the LAN prefix leaves this uplink as `outside`; used only with `ipv6.enabled`. */
  npt6: z.strictObject({ outside: ipv6Network }).nullable().default(null),
  /** Absent or null: on-link only (no routing table, no probe). */
  gateway: ipv4.nullable().default(null),
  probe: probe.optional(),
  /** IPv6 next hop (link-local, or global on an `addresses6` prefix); used only with `ipv6.enabled`. */
  gateway6: ipv6.nullable().default(null),
  probe6: probe6.optional(),
  /** Routing table of replies leaving by this uplink; default 201 + its index. */
  table: int(1, 252).optional(),
});

const forward = z.strictObject({
  name: ruleName,
  ...uplinkBinding,
  enabled: z.boolean().default(true),
  protocol: protocol.default("tcp"),
  publicPorts: ports,
  privateAddress: z.string(),
  privatePorts: ports,
  enforceKnock: z.boolean().default(true),
  users: z.array(z.string()).default([]),
});

const openPorts = z.strictObject({
  name: ruleName,
  ...uplinkBinding,
  enabled: z.boolean().default(true),
  privateAddress: z.string(),
  ports: z.array(z.strictObject({ protocol: protocol.default("tcp"), ports })),
  enforceKnock: z.boolean().default(true),
  users: z.array(z.string()).default([]),
});

const user = z.strictObject({
  name: userName,
  // RFC 4648 base32; 32 characters carry 160 bits, the protocol's minimum.
  secret: z.string().regex(/^[A-Z2-7]{32,}=*$/, {
    error: "must be upper-case base32 of at least 32 characters (160 bits)",
  }),
  firstPort: port,
  length: int(1, 8).default(3),
  transport: z.enum(["tcp", "udp", "any"]).default("any"),
});

/**
 * The knock tunables, named as the API's settings are (`GET /settings`), so
 * one name means one thing everywhere. `KNOCK_ALIASES` lists the old names.
 */
const knock = z.strictObject({
  idleTimeoutSeconds: int(10, 7 * 86400).default(3600),
  lifetimeSeconds: int(0, 365 * 86400).default(0),
  sequenceWindowSeconds: int(1, 300).default(15),
  failureLimit: int(1, 1000).default(5),
  failureWindowSeconds: int(1, 86400).default(600),
  penaltySeconds: int(0, 7 * 86400).default(600),
  maxInProgress: int(16, 1 << 24).default(65536),
  maxPenalised: int(16, 1 << 24).default(65536),
});

/** Deprecated names of `knock.*` fields (before the file took the API's names) and the new ones. */
export const KNOCK_ALIASES: Readonly<Record<string, string>> = Object.freeze({
  idleTimeoutSec: "idleTimeoutSeconds",
  lifetimeSec: "lifetimeSeconds",
  windowSec: "sequenceWindowSeconds",
  maxFailures: "failureLimit",
  failureWindowSec: "failureWindowSeconds",
  penaltySec: "penaltySeconds",
});

const collector = z.strictObject({
  host: z.string().min(1),
  port: port.default(514),
  format: z.enum(["rfc5424", "rfc3164"]).default("rfc5424"),
  facility: int(0, 23).default(16),
});

/** An etcd member's client URL. */
const etcdEndpoint = z.string().regex(/^https?:\/\/[^/\s]+\/?$/, {
  error: (iss) => `${JSON.stringify(iss.input)} is not a client URL (http(s)://host:port)`,
});

/**
 * Where state lives: a Deno KV file (the default, `backend` absent or "kv"),
 * or an etcd cluster (`backend: "etcd"`; `path` then names this node's local
 * files: the appliance key `<path>.key`, the certificate, the flow snapshot).
 * The etcd fields are refused without `backend: "etcd"` (in `load.ts`).
 */
const store = z.strictObject({
  backend: z.enum(["kv", "etcd"]).optional(),
  path: z.string().min(1).default("data/knockgate.kv"),
  endpoints: z.array(etcdEndpoint).min(1).max(16).optional(),
  prefix: z.string().regex(/^\/[\x21-\x7e]*\/$/, {
    error: 'must start and end with "/", printable ASCII without spaces (e.g. "/knockgate/")',
  }).optional(),
  tls: z.strictObject({
    ca: z.string().min(1),
    cert: z.string().min(1).optional(),
    key: z.string().min(1).optional(),
  }).optional(),
  username: z.string().min(1).optional(),
  password: z.string().optional(),
  /** Audit log retention (defaults: 100,000 entries, 365 days). */
  audit: z.strictObject({
    maxEntries: int(1000, 10_000_000).default(100_000),
    maxAgeDays: int(1, 36_500).default(365),
  }).prefault({}),
});

/** The schema of the configuration file; its output still lacks the parsed addresses. */
export const configSchema = z.strictObject({
  /** The uplinks (the single-object form is rewritten to a list of one by `load.ts`). */
  wan: z.array(uplink).min(1).max(16),
  /** Masquerade from the LAN: uplink names in order of preference (default: all, in list order). */
  masquerade: z.strictObject({ uplinks: z.array(uplinkName).optional() }).prefault({}),
  lan: z.strictObject({ interface: ifName, address: ipv4, network: cidr }),
  tun: z.strictObject({
    name: ifName.default("kn0"),
    mtu: int(576, 65535).default(1500),
    offload: z.boolean().default(true),
    /** TUN queues, one data-plane Worker each; "auto": one per core, up to 4. */
    queues: z.union([z.literal("auto"), int(1, 64)], {
      error: (iss) => `expected "auto" or an integer 1..64, got ${JSON.stringify(iss.input)}`,
    }).default("auto"),
  }).prefault({}),
  conntrack: z.strictObject({
    /** At most 2^23 - 1: the flow index keeps a handle in 24 bits (src/conntrack/flow_index.ts). */
    maxFlows: int(1024, (1 << 23) - 1).default(262144),
    /** Share of the flow ids that may hold a TCP flow (the rest hold UDP and ICMP without TCP state). */
    tcpShare: z.number().min(0).max(1).default(1),
  }).prefault({}),
  /** WAN sources admitted without a knock: IPv4 and (used with `ipv6.enabled`) IPv6 networks. */
  admission: z.strictObject({ allow: z.array(cidrAny).default([]) }).prefault({}),
  knock: knock.prefault({}),
  users: z.array(user).default([]),
  forwards: z.array(forward).default([]),
  openPorts: z.array(openPorts).default([]),
  management: z.strictObject({
    port: port.default(8443),
    wanAccess: z.enum(["knock", "never"]).default("knock"),
    /** An IPv4 or IPv6 address of the appliance; default the LAN address. */
    listen: ipAny.optional(),
    /** Uplinks whose addresses answer the management port after a knock (default: all). */
    uplinks: z.array(uplinkName).optional(),
  }).prefault({}),
  syslog: z.array(collector).default([]),
  store: store.prefault({}),
  /** An operator's certificate and key (PEM files); a self-signed pair is made when absent. */
  tls: z.strictObject({ cert: z.string().min(1), key: z.string().min(1) }).optional(),
  /** IPv6 through the appliance; off by default (IPv6 does not cross). */
  ipv6: z.strictObject({
    enabled: z.boolean().default(false),
    /** The appliance's LAN address and the LAN prefix; required when enabled. */
    lan: z.strictObject({ address: ipv6, network: ipv6Network }).optional(),
    /**
     * What one knock unlocks: the source's /64 by default (privacy addresses,
     * RFC 8981, rotate inside it), 128 for the one address. Shorter than /48
     * would reach past one site (RFC 6177 gives a site /48 to /64).
     */
    unlockPrefix: int(48, 128).default(64),
    /**
     * One knock step may unlock one source of each family (a dual-stack
     * client knocking over both); off, the second family's knock is a replay.
     */
    pairFamilies: z.boolean().default(false),
  }).prefault({}),
});

/** What the file may contain (before defaults). */
export type ConfigInput = z.input<typeof configSchema>;

/** What the schema produces. */
export type ConfigOutput = z.output<typeof configSchema>;

/** Readable reasons for zod's built-in issues (custom issues carry their own). */
export function issueMessage(iss: z.core.$ZodRawIssue): string | undefined {
  switch (iss.code) {
    case "invalid_type":
      if (iss.input === undefined) return "is required";
      return `expected ${iss.expected === "int" ? "an integer" : iss.expected}, got ${
        describe(iss.input)
      }`;
    case "invalid_value":
      return `must be one of ${iss.values.map((v) => JSON.stringify(v)).join(", ")}`;
    case "too_small":
      return iss.origin === "string" && iss.minimum === 1
        ? "must not be empty"
        : `must be at least ${iss.minimum}`;
    case "too_big":
      return `must be at most ${iss.maximum}`;
    default:
      return undefined;
  }
}

function describe(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  if (typeof v === "object") return "an object";
  if (typeof v === "string") return `the string ${JSON.stringify(v)}`;
  return `${typeof v} ${String(v)}`;
}
