/**
 * The appliance configuration as the rest of the program sees it: parsed,
 * defaulted and cross-checked. Addresses stay dotted quads for display, with
 * the unsigned 32-bit form (`...U32`) beside them for the data plane.
 */

import type { KnockTransport } from "../knock/profile.ts";
import type { SyslogFormat } from "../log/syslog.ts";
import type { OpenPortsRule, PortForwardRule } from "../nat/rule.ts";
import type { Cidr } from "../packet/address.ts";
import type { Ipv6Prefix } from "../packet/ipv6_address.ts";

/** One public address of an uplink. */
export interface UplinkAddress {
  /** Dotted quad. */
  address: string;
  addressU32: number;
  prefixLength: number;
  /** The connected network, `a.b.c.d/n` with host bits clear. */
  network: string;
}

/** One public IPv6 address of an uplink. */
export interface UplinkAddress6 {
  /** RFC 5952 text, `2001:db8::1`. */
  address: string;
  /** The address as four 32-bit words, most significant first (`packet/ipv6_address.ts`). */
  addressWords: number[];
  prefixLength: number;
  /** The on-link prefix, `2001:db8::/64` with host bits clear. */
  network: string;
}

/**
 * NPTv6 on an uplink (RFC 6296): LAN addresses leave by it with the LAN
 * prefix swapped for `outside`, and come back to `outside` for the LAN.
 */
export interface UplinkNpt6 {
  /** The outside prefix, `2001:db8:199::/64`, host bits clear, as long as the LAN prefix. */
  outside: string;
  outsideWords: number[];
  prefixLength: number;
}

/** The gateway health probe of an uplink (ICMP echo from its primary address). */
export interface UplinkProbe {
  target: string;
  targetU32: number;
  intervalMs: number;
  /** Consecutive lost probes that take the uplink down. */
  downAfter: number;
  /** Consecutive answered probes that bring it back. */
  upAfter: number;
}

/** The IPv6 gateway's health probe (ICMPv6 echo from the uplink's first IPv6 address). */
export interface UplinkProbe6 {
  /** RFC 5952 text; a link-local target is on the uplink's interface. */
  target: string;
  intervalMs: number;
  downAfter: number;
  upAfter: number;
}

/**
 * A WAN uplink: knocks and forwarded flows arrive on its addresses, replies
 * leave by it (routing table `table`), and masquerade may use its first
 * address.
 */
export interface UplinkConfig {
  name: string;
  interface: string;
  /** At least one; the first is the uplink's primary address (masquerade, probes). */
  addresses: UplinkAddress[];
  /** Its IPv6 addresses; always empty unless `ipv6.enabled`. */
  addresses6: UplinkAddress6[];
  /** NPTv6 of the LAN prefix on this uplink; null: none (always null unless `ipv6.enabled`). */
  npt6: UplinkNpt6 | null;
  /** Next hop, or null when the uplink is on-link only (no table, no probe). */
  gateway: string | null;
  probe: UplinkProbe | null;
  /**
   * IPv6 next hop (RFC 5952 text; link-local ones are on `interface`), or null
   * (no IPv6 table, no IPv6 probe); always null unless `ipv6.enabled`.
   */
  gateway6: string | null;
  /** Always null unless `ipv6.enabled`. */
  probe6: UplinkProbe6 | null;
  /** Routing table number of replies leaving by this uplink. */
  table: number;
}

/** Masquerade from the LAN to the WAN. */
export interface MasqueradeConfig {
  /** Uplink names in order of preference; the first one up is used. */
  uplinks: string[];
}

/** The LAN side: the interface, the appliance's LAN address and the LAN network. */
export interface LanConfig {
  interface: string;
  address: string;
  addressU32: number;
  /** `a.b.c.d/n`, host bits clear. */
  network: string;
  networkCidr: Cidr;
}

/** The LAN's IPv6 side. */
export interface Ipv6LanConfig {
  /** The appliance's LAN address, RFC 5952 text. */
  address: string;
  addressWords: number[];
  /** The LAN prefix, `2001:db8:1::/64`, host bits clear. */
  network: string;
  networkWords: number[];
  prefixLength: number;
}

/**
 * IPv6 through the appliance. Disabled (the default) nothing IPv6 crosses,
 * and the IPv6 fields of the file, checked all the same, are not applied
 * (`lan` null, every uplink's `addresses6` empty).
 */
export interface Ipv6Config {
  enabled: boolean;
  /** Set whenever `enabled`. */
  lan: Ipv6LanConfig | null;
  /** Prefix length of the source network one knock unlocks: 64 (default) .. 128 (the address). */
  unlockPrefix: number;
  /**
   * One knock step may unlock one IPv4 and one IPv6 source (default false:
   * one source of either). An on-path observer of one family's knock can
   * race it over the other family within the step.
   */
  pairFamilies: boolean;
}

/** The TUN device the process owns. */
export interface TunConfig {
  name: string;
  mtu: number;
  /** Negotiate virtio-net header offloads (checksum, TSO). */
  offload: boolean;
  /** Number of TUN queues (IFF_MULTI_QUEUE when above 1). */
  queues: number;
}

/** Connection tracking limits. */
export interface ConntrackConfig {
  /** Flows tracked at most (each has two hash entries). */
  maxFlows: number;
  /**
   * Share of the flow ids that can hold a TCP flow (0..1, default 1): below
   * 1 the others carry UDP and ICMP flows without TCP state, 37 bytes a flow
   * less, and at most `maxFlows * tcpShare` TCP flows fit.
   */
  tcpShare: number;
}

/**
 * The static gate before the knock engine. The file's one `allow` list is
 * split by family: `allow` keeps the IPv4 networks (what the data plane's
 * IPv4 gate has always taken), `allow6` the IPv6 ones.
 */
export interface AdmissionConfig {
  /** IPv4 CIDRs of WAN sources admitted without knocking, as written. */
  allow: string[];
  /** The same, parsed. */
  allowCidrs: Cidr[];
  /** IPv6 networks admitted without knocking, RFC 5952 (`2001:db8:5::/48`); empty with IPv6 off. */
  allow6: string[];
  /** The same, parsed. */
  allowPrefixes6: Ipv6Prefix[];
}

/**
 * Knock engine settings (see `portknock/v1`) under the data plane's names.
 * The file spells them as the API does (`idleTimeoutSeconds`,
 * `sequenceWindowSeconds`, `failureLimit`, `failureWindowSeconds`,
 * `penaltySeconds`, `lifetimeSeconds`); the old names load with a warning.
 */
export interface KnockSettings {
  /** An unlock ends after this long without traffic or new sessions. */
  idleTimeoutSec: number;
  /** An unlock ends this long after it began regardless of traffic; 0 for no limit. */
  lifetimeSec: number;
  /** A sequence must complete within this long from its first port. */
  windowSec: number;
  /** Failures per source IP within `failureWindowSec` that trigger a penalty. */
  maxFailures: number;
  failureWindowSec: number;
  /** How long a penalised IP's knocks are ignored. */
  penaltySec: number;
  /** Sequences in progress tracked at most. */
  maxInProgress: number;
  /** Penalised IPs tracked at most. */
  maxPenalised: number;
}

/** A user seeded from the configuration file (the store holds users once it exists). */
export interface SeedUser {
  name: string;
  /** RFC 4648 base32 TOTP secret, upper case, no padding. */
  secret: string;
  firstPort: number;
  length: number;
  transport: KnockTransport;
}

/** The management interface (HTTP API and web UI). */
export interface ManagementConfig {
  port: number;
  /** `knock`: reachable from the WAN by knock-unlocked IPs; `never`: LAN only. */
  wanAccess: "knock" | "never";
  /** Address it listens on (dotted quad or RFC 5952); the LAN address unless set. */
  listen: string;
  /** `listen` as a number; null when it is an IPv6 address. */
  listenU32: number | null;
  /** Uplinks whose addresses answer the management port (after a knock). */
  uplinks: string[];
}

/** One syslog collector. */
export interface SyslogCollectorConfig {
  host: string;
  port: number;
  format: SyslogFormat;
  /** 0..23; 16 is `local0`. */
  facility: number;
}

/** Where persistent state lives: a Deno KV file (the default). */
export interface KvStoreConfig {
  backend?: "kv";
  /** Deno KV file path. */
  path: string;
  /** Audit log retention; absent: the store's default (100,000 entries, 365 days). */
  audit?: AuditRetentionConfig;
}

/** How many and how old audit entries the store keeps (pruned hourly, in batches). */
export interface AuditRetentionConfig {
  maxEntries: number;
  maxAgeDays: number;
}

/** State in an etcd cluster shared by several appliances. */
export interface EtcdStoreConfig {
  backend: "etcd";
  /** This node's local files: the key `<path>.key`, the certificate and flow snapshot beside it. */
  path: string;
  /** Client URLs of the members. */
  endpoints: string[];
  /** Key prefix of this cluster's data (default `/knockgate/`). */
  prefix: string;
  /** PEM files: the members' CA, and a client certificate and key if they require one. */
  tls?: { ca: string; cert?: string; key?: string };
  username?: string;
  password?: string;
  audit?: AuditRetentionConfig;
}

/** Where persistent state lives. */
export type StoreConfig = KvStoreConfig | EtcdStoreConfig;

/** The management listener's own certificate and key, PEM file paths. */
export interface TlsConfig {
  cert: string;
  key: string;
}

/** The whole appliance configuration. */
export interface Config {
  /** At least one uplink; `wan[0].addresses[0]` is the primary WAN address. */
  wan: UplinkConfig[];
  masquerade: MasqueradeConfig;
  lan: LanConfig;
  tun: TunConfig;
  conntrack: ConntrackConfig;
  admission: AdmissionConfig;
  knock: KnockSettings;
  users: SeedUser[];
  forwards: PortForwardRule[];
  openPorts: OpenPortsRule[];
  management: ManagementConfig;
  syslog: SyslogCollectorConfig[];
  store: StoreConfig;
  /** Absent: a self-signed certificate beside the store (made on first start). */
  tls?: TlsConfig;
  ipv6: Ipv6Config;
}
