/**
 * Request and response schemas of the management API (zod, documented in
 * the OpenAPI description). Input objects are strict: an unknown field is a
 * 400 naming it, so a typo never passes silently. The CLI and UI may import
 * these for types.
 *
 * They check shape only: types, ranges, formats. Whatever depends on other
 * fields or records (range widths, port clashes, private addresses against
 * the addressing, rule users that must exist) is `validateConfig`'s, run by
 * the store's write transaction (409 or 422 listing every problem).
 */
import { z } from "@hono/zod-openapi";
import { parseIp } from "../packet/ip_text.ts";

const int = (min: number, max: number) => z.number().int().min(min).max(max);

/** One problem of a validation error. */
export const ProblemSchema = z.object({
  field: z.string().openapi({
    description: "The field at fault in the operator's words; empty for the whole body",
    example: "knock.firstPort",
  }),
  message: z.string().openapi({
    example: 'Cannot save user "bob": first knock port 52201 is a public tcp port of rule "web"',
  }),
  clash: z.string().optional().openapi({
    description: "For a clash, the other party and its field",
    example: 'rule "web" publicPorts 52201',
  }),
}).openapi("Problem");

/** Body of every error response. */
export const ErrorSchema = z.object({
  error: z.object({
    status: z.number().int(),
    code: z.string().openapi({
      description: "invalid_input (400), conflict (409), invalid_config (422), not_found, ...",
      example: "invalid_input",
    }),
    message: z.string(),
    field: z.string().optional().openapi({
      description: "The first problem's field",
      example: "knock.firstPort",
    }),
    issues: z.array(z.object({ field: z.string(), reason: z.string() })).optional(),
  }),
  problems: z.array(ProblemSchema).optional().openapi({
    description: "Every problem of a validation error (400, 409, 422), all at once",
  }),
}).openapi("Error");

/** A user's role. */
export const RoleSchema = z.enum(["administrator", "operator", "viewer"]).openapi("Role");

/** Six TOTP digits. */
export const CodeSchema = z.string().regex(/^\d{6}$/, "must be 6 digits").openapi({
  example: "123456",
});

const transport = z.enum(["tcp", "udp", "any"]);

/** A user's knock parameters. */
export const KnockSchema = z.object({
  enabled: z.boolean(),
  firstPort: int(0, 65535),
  length: int(1, 8),
  transport,
}).openapi("UserKnock");

/** Knock parameters to set; absent fields keep their value (or the default). */
export const KnockPatchSchema = z.strictObject({
  enabled: z.boolean().optional(),
  firstPort: int(0, 65535).optional(),
  length: int(1, 8).optional(),
  transport: transport.optional(),
}).openapi("UserKnockPatch");

/** A user as clients see it (no password hash, no secret). */
export const UserSchema = z.object({
  name: z.string().openapi({ example: "alice" }),
  role: RoleSchema,
  mfa: z.object({ enrolled: z.boolean(), rotating: z.boolean() }),
  knock: KnockSchema,
  allowedRules: z.array(z.string()),
  createdAt: z.number(),
  updatedAt: z.number(),
  version: z.number().int(),
}).openapi("User");

const ruleNames = z.array(z.string().min(1).max(64)).max(256).openapi({
  description: 'Rule names this user\'s unlocks open; "*" for every rule',
  example: ["*"],
});

/** Body of `POST /users`. */
export const NewUserSchema = z.strictObject({
  name: z.string().openapi({ example: "alice" }),
  password: z.string().openapi({ example: "correct horse battery" }),
  role: RoleSchema,
  knock: KnockPatchSchema.optional(),
  allowedRules: ruleNames.optional(),
}).openapi("NewUser");

/** Body of `PATCH /users/{name}`. */
export const UserPatchSchema = z.strictObject({
  password: z.string().optional(),
  role: RoleSchema.optional(),
  knock: KnockPatchSchema.optional(),
  allowedRules: ruleNames.optional(),
}).openapi("UserPatch");

/** What a phone authenticator needs to enrol: the secret, its URI and a QR code. */
export const EnrollmentSchema = z.object({
  secret: z.string().openapi({ description: "RFC 4648 base32 TOTP secret" }),
  otpauthUri: z.string(),
  qrSvg: z.string().openapi({ description: "The otpauth URI as an SVG QR code" }),
}).openapi("Enrollment");

/** A user with the enrolment they must complete. */
export const UserEnrollmentSchema = z.object({
  user: UserSchema,
  enrollment: EnrollmentSchema,
}).openapi("UserEnrollment");

/** Body carrying a TOTP code. */
export const VerifySchema = z.strictObject({ code: CodeSchema }).openapi("VerifyCode");

/** Body of `POST /auth/login`. */
export const LoginSchema = z.strictObject({
  username: z.string().min(1).max(64),
  password: z.string().min(1).max(1024),
  code: CodeSchema,
}).openapi("Login");

/** Answer of a sign-in and of `GET /auth/me`. */
export const SessionSchema = z.object({
  user: UserSchema,
  role: RoleSchema,
  kind: z.enum(["cookie", "token"]),
  /** Send it as `X-CSRF-Token` on every non-GET request of a cookie session. */
  csrfToken: z.string().optional(),
  expiresAt: z.number(),
}).openapi("Session");

/** Body of `POST /auth/tokens`. */
export const NewTokenSchema = z.strictObject({
  ttlDays: int(1, 365).optional().openapi({ description: "Lifetime in days; default 30" }),
}).openapi("NewToken");

/** A token as listed (never the token itself). */
export const TokenInfoSchema = z.object({
  id: z.string().openapi({ description: "Token id (the SHA-256 of the token)" }),
  createdAt: z.number(),
  expiresAt: z.number(),
}).openapi("TokenInfo");

/** A newly created token; `token` is shown this once. */
export const CreatedTokenSchema = TokenInfoSchema.extend({
  token: z.string().openapi({ description: "Send as `Authorization: Bearer <token>`" }),
}).openapi("CreatedToken");

/** An inclusive port range. */
export const PortRangeSchema = z.strictObject({
  start: int(1, 65535),
  end: int(1, 65535),
}).openapi("PortRange", { example: { start: 52201, end: 52201 } });

const protocol = z.enum(["tcp", "udp", "both"]);
/** An address of either family, as the OpenAPI document says it. */
export const EITHER_FAMILY = [
  { type: "string" as const, format: "ipv4" },
  { type: "string" as const, format: "ipv6" },
];
/**
 * A dotted quad, or an IPv6 address in RFC 4291 text (no brackets, no zone);
 * the message repeats the value, as an operator reads it next to the field.
 */
const privateAddress = () =>
  z.string().refine((v) => parseIp(v) !== null, {
    error: (iss) => `private address ${JSON.stringify(iss.input)} is not an IPv4 or IPv6 address`,
  }).openapi({ anyOf: EITHER_FAMILY });
const ruleName = z.string().openapi({ example: "web" });
const ALL = "all";
/** `"all"` or an uplink name (which one exists is the store's check, 409/422 naming `uplink`). */
const uplinkField = z.string().min(1).max(32).openapi({
  description: 'The WAN uplink (configuration `wan[].name`) the rule listens on, or "all"',
  example: "isp-a",
});
/** `"all"` or an address of either family (which addresses the uplink has is the store's check). */
const wanAddressField = z.string().refine((v) => v === ALL || parseIp(v) !== null, {
  error: (iss) =>
    `WAN address ${JSON.stringify(iss.input)} is not "all" or an IPv4 or IPv6 address`,
})
  .openapi({
    description: 'One of the uplink\'s addresses, or "all" (every address of the uplink, or of ' +
      'every uplink when `uplink` is "all"; a specific address needs a specific uplink). ' +
      "Of the private address's family: an IPv4 one of `wan[].addresses` for an IPv4 host, " +
      "an IPv6 one of `wan[].addresses6` for an IPv6 host (an IPv4 WAN address with an IPv6 " +
      'private address, or the reverse, is a 400 naming `wanAddress`); "all" then means every ' +
      'address of that family. A pinhole (open-ports rule to an IPv6 host) takes only "all".',
    example: "198.51.100.2",
    anyOf: [{ type: "string", enum: [ALL] }, ...EITHER_FAMILY],
  });
/** The WAN binding of a rule body: both default to "all". */
const wanBindingInput = {
  uplink: uplinkField.default(ALL),
  wanAddress: wanAddressField.default(ALL),
};
/** The WAN binding of a stored rule, always present. */
const wanBinding = {
  uplink: z.string().openapi({ description: 'The uplink the rule listens on, or "all"' }),
  wanAddress: z.string().openapi({
    description: 'The WAN address the rule listens on, or "all"',
  }),
};
const ruleUsers = z.array(z.string().min(1).max(64)).max(256)
  .openapi({ description: "When non-empty, only these users' unlocks admit" });

/**
 * The families of a body's `privateAddress` and `wanAddress` agree, and a
 * pinhole names no WAN address (400 at `wanAddress`): the same words as the
 * store's `validateConfig`, which checks every writer (the file too).
 */
function sameFamily(pinhole: boolean) {
  return (r: { privateAddress: string; wanAddress: string }, ctx: z.RefinementCtx) => {
    const host = parseIp(r.privateAddress), wan = parseIp(r.wanAddress);
    if (host === null || wan === null) return;
    const name = (f: number) => (f === 6 ? "IPv6" : "IPv4");
    const message = pinhole && host.family === 6
      ? `WAN address ${r.wanAddress}: an open-ports rule to an IPv6 host is a pinhole to ` +
        `${r.privateAddress} itself (no NAT), so wanAddress must be "all"`
      : host.family !== wan.family
      ? `WAN address ${r.wanAddress} is ${name(wan.family)} but private address ` +
        `${r.privateAddress} is ${name(host.family)}: a forward stays in one family`
      : null;
    if (message !== null) ctx.addIssue({ code: "custom", path: ["wanAddress"], message });
  };
}

/** Body of a port-forward create or replace. */
export const ForwardInputSchema = z.strictObject({
  name: ruleName,
  ...wanBindingInput,
  enabled: z.boolean().default(true),
  protocol: protocol.default("tcp"),
  publicPorts: PortRangeSchema,
  privateAddress: privateAddress().openapi({
    description: "The LAN host: an IPv4 address in the LAN network (`publicPorts` on the WAN " +
      "IPv4 addresses are translated to it), or, with `ipv6.enabled`, an IPv6 global unicast " +
      "address in `ipv6.lan.network`: a **NAT66 forward**, `publicPorts` on the WAN IPv6 " +
      "addresses (`wan[].addresses6`) rewritten to this host and `privatePorts`. Public ports " +
      "are unique per WAN address and family.",
    example: "192.0.2.12",
  }),
  privatePorts: PortRangeSchema.optional().openapi({ description: "Default: publicPorts" }),
  enforceKnock: z.boolean().default(true),
  users: ruleUsers.default([]),
}).superRefine(sameFamily(false)).openapi("ForwardInput");

const ruleMeta = {
  createdAt: z.number(),
  updatedAt: z.number(),
  version: z.number().int(),
};

/** A stored port forward. */
export const ForwardSchema = z.object({
  name: z.string(),
  ...wanBinding,
  enabled: z.boolean(),
  protocol,
  publicPorts: PortRangeSchema,
  privateAddress: z.string(),
  privatePorts: PortRangeSchema,
  enforceKnock: z.boolean(),
  users: z.array(z.string()),
  ...ruleMeta,
}).openapi("Forward");

const openPortEntry = z.strictObject({ protocol: protocol.default("tcp"), ports: PortRangeSchema });

/** Body of an open-ports create or replace. */
export const OpenPortsInputSchema = z.strictObject({
  name: ruleName,
  ...wanBindingInput,
  enabled: z.boolean().default(true),
  privateAddress: privateAddress().openapi({
    description: "The LAN host: an IPv4 address (its ports on the WAN IPv4 addresses are " +
      "forwarded unchanged), or, with `ipv6.enabled`, an IPv6 global unicast address in " +
      "`ipv6.lan.network`: a **pinhole**, new flows from the WAN to that host's own address on " +
      'these ports, no NAT (the usual IPv6 firewall model); `wanAddress` must be "all", and a ' +
      "unique local address (fc00::/7) is refused, as the Internet cannot reach it, unless an " +
      "uplink has `npt6` (the host is then reached at its outside address).",
    example: "192.0.2.25",
  }),
  ports: z.array(openPortEntry).min(1).max(64),
  enforceKnock: z.boolean().default(true),
  users: ruleUsers.default([]),
}).superRefine(sameFamily(true)).openapi("OpenPortsInput");

/** A stored open-ports rule. */
export const OpenPortsSchema = z.object({
  name: z.string(),
  ...wanBinding,
  enabled: z.boolean(),
  privateAddress: z.string(),
  ports: z.array(z.object({ protocol, ports: PortRangeSchema })),
  enforceKnock: z.boolean(),
  users: z.array(z.string()),
  outsideAddresses: z.array(z.object({ uplink: z.string(), address: z.string() })).optional()
    .openapi({
      description: "A pinhole's host as the WAN also reaches it through NPTv6: its outside " +
        "address on each uplink with `npt6` (RFC 6296 adjusts one interface-identifier word, so " +
        "it is not the prefix swapped alone). Absent when no uplink has NPTv6.",
      example: [{ uplink: "isp", address: "2001:db8:199:0:fff8::12" }],
    }),
  ...ruleMeta,
}).openapi("OpenPorts");

const collector = z.strictObject({
  host: z.string(),
  port: int(1, 65535).default(514),
  format: z.enum(["rfc5424", "rfc3164"]).default("rfc5424"),
});

const knockTunables = {
  sequenceWindowSeconds: z.number().int(),
  failureLimit: z.number().int(),
  failureWindowSeconds: z.number().int(),
  penaltySeconds: z.number().int(),
};
const limits = {
  maxConnections: z.number().int(),
  maxUnlocks: z.number().int(),
  maxPendingKnocks: z.number().int(),
};

/** The configuration's `ipv6` section, read only. */
export const Ipv6ViewSchema = z.object({
  enabled: z.boolean().openapi({
    description: "Off (the default): nothing IPv6 crosses, and rules to IPv6 hosts are refused",
  }),
  lanAddress: z.string().nullable().openapi({
    description: "The appliance's LAN IPv6 address (null with IPv6 off)",
    example: "2001:db8:1::1",
  }),
  lanNetwork: z.string().nullable().openapi({
    description: "The LAN prefix every IPv6 private address lies in (null with IPv6 off)",
    example: "2001:db8:1::/64",
  }),
  unlockPrefix: z.number().int().min(48).max(128).openapi({
    description: "What an IPv6 knock unlocks: the source's /64 by default (privacy addresses, " +
      "RFC 8981, rotate inside it), 128 for the one address",
    example: 64,
  }),
  pairFamilies: z.boolean().openapi({
    description:
      "One knock step may unlock one IPv4 and one IPv6 source (`knock --family both`); " +
      "off (the default), the second family's knock of a step is a replay",
  }),
}).openapi("Ipv6Settings");

/** The appliance settings the API manages, plus the network layout (read-only, from the config file). */
export const SettingsSchema = z.object({
  idleTimeoutSeconds: z.number().int(),
  knock: z.object(knockTunables),
  syslog: z.object({
    collectors: z.array(z.object({
      host: z.string(),
      port: z.number().int(),
      format: z.enum(["rfc5424", "rfc3164"]),
    })),
  }),
  limits: z.object(limits),
  network: z.object({
    wanAddress: z.string().openapi({ description: "The primary WAN address" }),
    uplinks: z.array(z.object({
      name: z.string(),
      interface: z.string(),
      addresses: z.array(z.string()).openapi({ example: ["198.51.100.1/26"] }),
      addresses6: z.array(z.string()).openapi({
        description: "Its IPv6 addresses with prefix lengths, RFC 5952 (empty with IPv6 off)",
        example: ["2001:db8:a::1/64"],
      }),
      gateway: z.string().nullable(),
      gateway6: z.string().nullable().openapi({
        description: "The IPv6 next hop; null without one or with IPv6 off",
        example: "fe80::1",
      }),
    })).openapi({ description: "The WAN uplinks, in configuration order" }),
    lanAddress: z.string(),
    lanNetwork: z.string(),
    managementPort: z.number().int(),
    managementWanAccess: z.enum(["knock", "never"]),
    ipv6: Ipv6ViewSchema,
  }),
  version: z.number().int(),
  updatedAt: z.number(),
}).openapi("Settings", {
  description: "Owned by the store. The configuration file's `knock` section uses the same names " +
    "(`idleTimeoutSeconds`, `sequenceWindowSeconds`, `failureLimit`, `failureWindowSeconds`, " +
    "`penaltySeconds`) and its values, with `syslog`, only seed an empty store; " +
    "`deno task config export`/`import` back them up and restore them.",
});

/** Body of `PATCH /settings`; ranges are checked by the store (400 naming the field). */
export const SettingsPatchSchema = z.strictObject({
  idleTimeoutSeconds: z.number().int().optional(),
  knock: z.strictObject({
    sequenceWindowSeconds: z.number().int().optional(),
    failureLimit: z.number().int().optional(),
    failureWindowSeconds: z.number().int().optional(),
    penaltySeconds: z.number().int().optional(),
  }).optional(),
  syslog: z.strictObject({ collectors: z.array(collector).max(8) }).optional(),
  limits: z.strictObject({
    maxConnections: z.number().int().optional(),
    maxUnlocks: z.number().int().optional(),
    maxPendingKnocks: z.number().int().optional(),
  }).optional(),
}).openapi("SettingsPatch");

/** Whether the system clock can be trusted for TOTP. */
export const ClockHealthSchema = z.object({
  synchronised: z.boolean().nullable(),
  detail: z.string(),
  now: z.number(),
}).openapi("ClockHealth");

/** One unlocked source IP. */
export const UnlockSchema = z.object({
  ip: z.string().openapi({
    description: "The unlocked source: an IPv4 address, or for a knock over IPv6 the source's " +
      "network of `ipv6.unlockPrefix` bits in RFC 5952 text (`2001:db8:1:2::/64`; the bare " +
      "address when unlockPrefix is 128). An IPv4 knock unlocks only IPv4, an IPv6 knock only " +
      "IPv6.",
    example: "203.0.113.10",
  }),
  user: z.string(),
  wanAddress: z.string().openapi({
    description: "The WAN address the knock arrived on, IPv4 or IPv6 (empty for unlocks of " +
      "before); the unlock admits to knock-enforced rules on every uplink",
    example: "198.51.100.65",
  }),
  unlockedAt: z.number(),
  lastSeen: z.number(),
  expiresAt: z.number(),
  drift: z.number().int(),
  flows: z.number(),
  bytes: z.number(),
}).openapi("Unlock");

/** An uplink's health as the data plane reports it. */
export const UplinkStatusSchema = z.object({
  name: z.string(),
  up: z.boolean(),
  probing: z.boolean().openapi({ description: "A gateway probe watches it (false: always up)" }),
  target: z.string().nullable(),
  sent: z.number().int(),
  received: z.number().int(),
  lastRttMs: z.number().nullable(),
  changedAt: z.number().openapi({ description: "When `up` last changed, ms epoch; 0 never" }),
  masquerade: z.boolean().openapi({ description: "Masquerade from the LAN uses it now" }),
  ipv6: z.object({
    up: z.boolean(),
    target: z.string().openapi({ example: "fe80::1" }),
    sent: z.number().int(),
    received: z.number().int(),
    lastRttMs: z.number().nullable(),
    changedAt: z.number().openapi({ description: "When `up` last changed, ms epoch; 0 never" }),
  }).nullable().optional().openapi({
    description: "The IPv6 gateway's ICMPv6 probe (`probe6`); null when none watches it",
  }),
}).openapi("UplinkStatus");

/** A configured uplink with its health. */
export const UplinkSchema = z.object({
  name: z.string().openapi({ example: "isp-a" }),
  interface: z.string().openapi({ example: "wan0" }),
  addresses: z.array(z.string()).openapi({ example: ["198.51.100.1/26", "198.51.100.2/26"] }),
  addresses6: z.array(z.string()).openapi({
    description: "Its IPv6 addresses with prefix lengths, RFC 5952 (empty with IPv6 off)",
    example: ["2001:db8:a::1/64"],
  }),
  npt6: z.object({ outside: z.string() }).nullable().openapi({
    description: "NPTv6 (RFC 6296): the LAN prefix leaves by it as this outside prefix, and " +
      "comes back to it; null: none",
    example: { outside: "2001:db8:b:100::/64" },
  }),
  gateway: z.string().nullable(),
  gateway6: z.string().nullable().openapi({
    description: "The IPv6 next hop (link-local ones are on `interface`); null without one or " +
      "with IPv6 off",
    example: "fe80::1",
  }),
  lanIpv6Egress: z.boolean().openapi({
    description: "The LAN prefix's IPv6 leaves by this uplink now (with `--routing`: the first " +
      "masquerade uplink with a gateway6 whose IPv6 probe answers)",
  }),
  management: z.boolean().openapi({
    description: "The management port answers (after a knock) on its addresses",
  }),
  masqueradeOrder: z.number().int().nullable().openapi({
    description: "Its index in the masquerade preference list; null when masquerade never uses it",
  }),
  status: UplinkStatusSchema.nullable().openapi({
    description: "null when the data plane cannot tell",
  }),
}).openapi("Uplink");

/** One tracked flow. */
export const FlowSchema = z.object({
  proto: z.number().int().openapi({
    description: "IP protocol (IPv6: the upper-layer header): 6 TCP, 17 UDP, 1 ICMP, 58 ICMPv6",
  }),
  state: z.string(),
  origSrc: z.string().openapi({
    description: "Addresses are dotted quads or RFC 5952 text (`2001:db8:1:2::99`); a " +
      "pinhole's flow has the same addresses both ways, a NAT66 forward's reply comes from " +
      "the LAN host",
    example: "203.0.113.10",
  }),
  origSrcPort: z.number().int(),
  origDst: z.string(),
  origDstPort: z.number().int(),
  replySrc: z.string(),
  replySrcPort: z.number().int(),
  replyDst: z.string(),
  replyDstPort: z.number().int(),
  packets: z.number(),
  bytes: z.number(),
  expiresInSec: z.number(),
  rule: z.string().nullable(),
  assured: z.boolean(),
}).openapi("Flow");

/** The store backend's connection state (`Store.health()`). */
export const StoreHealthSchema = z.object({
  backend: z.enum(["kv", "etcd"]),
  connected: z.boolean().openapi({
    description: "false while no etcd member answers: reads come from the last known state, " +
      "changes are refused with 503, the data plane keeps forwarding (always true for the KV file)",
  }),
  lastContactMs: z.number().openapi({
    description: "When an etcd member last answered, ms since the epoch (0 never; KV: now)",
  }),
  revision: z.number().int().openapi({
    description: "The etcd revision this node's copy of the store reflects (0 for the KV file)",
  }),
  loaded: z.boolean().openapi({
    description: "false until this node has read the store once (it started while no etcd " +
      "member answered): no users, rules or settings yet, nothing forwarded, management 503",
  }),
}).openapi("StoreHealth");

/** The appliance at a glance. */
export const StatusSchema = z.object({
  uptimeSec: z.number(),
  counters: z.object({
    stats: z.record(z.string(), z.number()),
    drops: z.record(z.string(), z.number()),
  }),
  conntrack: z.record(z.string(), z.number()),
  unlocks: z.number().int(),
  store: StoreHealthSchema,
  clock: ClockHealthSchema,
}).openapi("Status");

/** An appliance event with its sequence number. */
export const EventSchema = z.looseObject({
  seq: z.number().int(),
  type: z.string(),
  time: z.number(),
  severity: z.number().int(),
}).openapi("Event");

/** One audit entry. */
export const AuditEntrySchema = z.object({
  id: z.string(),
  time: z.number(),
  actor: z.string(),
  action: z.string(),
  target: z.string(),
  before: z.unknown(),
  after: z.unknown(),
}).openapi("AuditEntry");

/** Answer of `GET /health`. */
export const HealthSchema = z.object({
  status: z.enum(["ok", "waiting-for-store"]).openapi({
    description: "The API answers; still ok (and 200) while only the store is unreachable. " +
      "waiting-for-store (503): the store was never read since the start, nothing is forwarded",
  }),
  clock: ClockHealthSchema,
  store: StoreHealthSchema,
}).openapi("Health");

/** One appliance of the fleet sharing the store (`GET /nodes`). */
export const NodeSchema = z.object({
  name: z.string().openapi({ example: "kg-a" }),
  url: z.string().openapi({
    description: "Its management API",
    example: "https://192.0.2.2:8443/",
  }),
  version: z.string(),
  startedAt: z.number().openapi({ description: "When it started, ms since the epoch" }),
  heartbeatAt: z.number().openapi({
    description: "Its last heartbeat, ms since the epoch (its own clock; every 5 s)",
  }),
  flows: z.number().int().openapi({ description: "Tracked flows at the heartbeat" }),
  unlocks: z.number().int().openapi({ description: "Unlocked IPs at the heartbeat" }),
  up: z.boolean().openapi({
    description: "Its heartbeat is at most 3 intervals (15 s) old; this node is always up",
  }),
  self: z.boolean().openapi({ description: "The node that answered" }),
}).openapi("Node");

/** Inferred input and output types. */
export type NewUserInput = z.infer<typeof NewUserSchema>;
/** A port-forward body after defaults. */
export type ForwardInput = z.infer<typeof ForwardInputSchema>;
/** An open-ports body after defaults. */
export type OpenPortsInput = z.infer<typeof OpenPortsInputSchema>;
/** A settings document as the API shows it. */
export type SettingsView = z.infer<typeof SettingsSchema>;

/** A certificate as clients see it. */
export const CertificateSchema = z.object({
  fingerprint: z.string().openapi({
    description: "SHA-256 of the DER certificate, hex pairs joined by ':' (pin this)",
  }),
  subject: z.string(),
  issuer: z.string(),
  subjectAltNames: z.array(z.string()),
  notBefore: z.number().int(),
  notAfter: z.number().int(),
  selfSigned: z.boolean(),
}).openapi("Certificate");

/** The management listener's certificate. */
export const TlsSchema = z.object({
  active: CertificateSchema,
  source: z.enum(["config", "store", "generated"]).openapi({
    description: "config: the file's tls paths; store/generated: the pair beside the store",
  }),
  pending: CertificateSchema.nullable().openapi({
    description: "Installed through the API, served from the next start",
  }),
  /** False when the configuration file names the pair. */
  replaceable: z.boolean(),
}).openapi("Tls");

/** An operator's certificate (chain allowed, leaf first) and its private key, PEM. */
export const TlsPutSchema = z.strictObject({
  cert: z.string().min(1).max(32_768),
  key: z.string().min(1).max(16_384),
}).openapi("TlsPut");
