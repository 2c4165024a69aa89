/**
 * The embedded default configuration: the same values as
 * `config/appliance.jsonc` (a test keeps the two identical), so the appliance
 * and the tests can start without the file.
 */

import { parseConfig } from "./load.ts";
import type { ConfigInput } from "./schema.ts";
import type { Config } from "./types.ts";

/** The default configuration as written in the file (ports still `"N"` / `"A-B"`). */
export const DEFAULT_CONFIG_INPUT: ConfigInput = {
  wan: [{ name: "wan", interface: "wan0", addresses: ["198.51.100.1/24"] }],
  lan: { interface: "lan0", address: "192.0.2.1", network: "192.0.2.0/24" },
  tun: { name: "kn0", mtu: 1500, offload: true, queues: "auto" },
  conntrack: { maxFlows: 262144 },
  admission: { allow: [] },
  knock: {
    idleTimeoutSeconds: 3600,
    lifetimeSeconds: 0,
    sequenceWindowSeconds: 15,
    failureLimit: 5,
    failureWindowSeconds: 600,
    penaltySeconds: 600,
    maxInProgress: 65536,
    maxPenalised: 65536,
  },
  users: [
    {
      name: "alice",
      secret: "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ",
      firstPort: 41001,
      length: 3,
      transport: "any",
    },
  ],
  forwards: [
    forward("web", "tcp", "52201", "8080"),
    forward("iperf", "both", "52202", "5201"),
    forward("range", "tcp", "52210-52219", "8080-8089"),
    forward("udp-echo", "udp", "52203", "7"),
  ],
  openPorts: [],
  management: { port: 8443, wanAccess: "knock", listen: "192.0.2.1" },
  syslog: [],
  store: { path: "data/knockgate.kv" },
};

function forward(
  name: string,
  protocol: "tcp" | "udp" | "both",
  publicPorts: string,
  privatePorts: string,
): NonNullable<ConfigInput["forwards"]>[number] {
  return {
    name,
    enabled: true,
    protocol,
    publicPorts,
    privateAddress: "192.0.2.12",
    privatePorts,
    enforceKnock: true,
    users: [],
  };
}

/** A fresh copy of the default configuration, parsed and checked. */
export function defaultConfig(): Config {
  return parseConfig(JSON.stringify(DEFAULT_CONFIG_INPUT), "<default config>");
}
