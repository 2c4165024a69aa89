/**
 * Port-forwarding and open-ports rules as the operator writes them. The
 * compiled lookup index is built from these (see `rule_index.ts`).
 */

/** Transport a rule applies to. */
export type RuleProtocol = "tcp" | "udp" | "both";

/** An inclusive port range; a single port has `start === end`. */
export interface PortRange {
  start: number;
  end: number;
}

/**
 * A port-forwarding rule: public ports on a WAN address (or every one) map to a private
 * host's ports. When the public range is wider than one port, the private
 * range has the same width (port N of the public range maps to port N of the
 * private range) or is a single port (every public port maps to it).
 */
export interface PortForwardRule {
  /** Unique name, shown in logs and the UI. */
  name: string;
  /** The uplink it listens on: a name, or "all" (also when absent). */
  uplink?: string;
  /** The WAN address it listens on: one of the uplink's, or "all" (also when absent). */
  wanAddress?: string;
  enabled: boolean;
  protocol: RuleProtocol;
  publicPorts: PortRange;
  /** Private host, dotted quad. */
  privateAddress: string;
  privatePorts: PortRange;
  /** New flows need a knock-unlocked source IP. */
  enforceKnock: boolean;
  /** When non-empty and knocking is enforced, only these users' unlocks admit. */
  users: string[];
}

/** One entry of an open-ports rule. */
export interface OpenPort {
  protocol: RuleProtocol;
  ports: PortRange;
}

/**
 * An open-ports rule: a set of ports on the WAN address forwarded unchanged
 * to one private host (public port N goes to private port N).
 */
export interface OpenPortsRule {
  name: string;
  /** The uplink it listens on: a name, or "all" (also when absent). */
  uplink?: string;
  /** The WAN address it listens on: one of the uplink's, or "all" (also when absent). */
  wanAddress?: string;
  enabled: boolean;
  privateAddress: string;
  ports: OpenPort[];
  enforceKnock: boolean;
  users: string[];
}
