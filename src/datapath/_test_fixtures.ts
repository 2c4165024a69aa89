/** Shared fixtures of the datapath's unit tests: the lab's addressing, settings and a forward. */
import type { PortForwardRule } from "../nat/rule.ts";
import type { DatapathSettings } from "./messages.ts";

export const CLIENT = "203.0.113.10", CLIENT2 = "203.0.113.20", WAN = "198.51.100.1";
export const SERVER = "192.0.2.12", LAN = "192.0.2.1";
/** Alice's TOTP secret in the lab configuration. */
export const SECRET = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
/** A fixed time, ms. */
export const T0 = 1_764_028_800_000;

export const SETTINGS: DatapathSettings = {
  wanAddress: WAN,
  uplinks: [{ name: "wan", addresses: [WAN], management: true, probe: null }],
  masquerade: ["wan"],
  lanAddress: LAN,
  lanNetwork: "192.0.2.0/24",
  managementPort: 8443,
  managementWanAccess: "knock",
  allow: [],
  maxFlows: 1024,
  knock: {
    idleTimeoutSec: 60,
    lifetimeSec: 0,
    windowSec: 15,
    maxFailures: 5,
    failureWindowSec: 600,
    penaltySec: 600,
    maxInProgress: 1024,
    maxPenalised: 1024,
  },
};

/** A forward of both transports from WAN port `pub` to the server's `priv`. */
export function forward(
  name: string,
  pub: number,
  priv: number,
  enforceKnock: boolean,
): PortForwardRule {
  return {
    name,
    enabled: true,
    protocol: "both",
    publicPorts: { start: pub, end: pub },
    privateAddress: SERVER,
    privatePorts: { start: priv, end: priv },
    enforceKnock,
    users: [],
  };
}
