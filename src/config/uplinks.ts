/** Views of the configured uplinks that other layers take as they are. */
import type { Ipv6Layout, UplinkLayout } from "../nat/rule_validate.ts";
import { urlHost } from "../packet/ip_text.ts";
import type { Config, Ipv6Config, UplinkConfig } from "./types.ts";

/** The primary WAN address (the first uplink's first address), dotted quad. */
export function primaryWanAddress(config: Config): string {
  return config.wan[0].addresses[0].address;
}

/** Every WAN address of every uplink, dotted quads, in order. */
export function wanAddresses(config: Config): string[] {
  return config.wan.flatMap((u) => u.addresses.map((a) => a.address));
}

/** The uplinks as rule validation sees them: names, addresses, management reach. */
export function layoutUplinks(wan: UplinkConfig[], managementUplinks: string[]): UplinkLayout[] {
  return wan.map((u) => ({
    name: u.name,
    addresses: u.addresses.map((a) => a.address),
    addresses6: u.addresses6.map((a) => a.address),
    management: managementUplinks.includes(u.name),
  }));
}

/** The uplinks as the data plane takes them (`DatapathUplink`): addresses as dotted quads. */
export function datapathUplinks(config: Config): {
  name: string;
  addresses: string[];
  addresses6: string[];
  /** Only where the uplink has NPTv6. */
  npt6?: { outside: string };
  management: boolean;
  probe: { target: string; intervalMs: number; downAfter: number; upAfter: number } | null;
  interface?: string;
  probe6?: { target: string; intervalMs: number; downAfter: number; upAfter: number };
}[] {
  return config.wan.map((u) => ({
    name: u.name,
    addresses: u.addresses.map((a) => a.address),
    addresses6: u.addresses6.map((a) => a.address),
    ...(u.npt6 === null ? {} : { npt6: { outside: u.npt6.outside } }),
    management: config.management.wanAccess === "knock" &&
      config.management.uplinks.includes(u.name),
    probe: u.probe && {
      target: u.probe.target,
      intervalMs: u.probe.intervalMs,
      downAfter: u.probe.downAfter,
      upAfter: u.probe.upAfter,
    },
    // Only with an IPv6 probe (its socket is scoped to the interface for a link-local target).
    ...(u.probe6 ? { interface: u.interface, probe6: { ...u.probe6 } } : {}),
  }));
}

/** The LAN's IPv6 side as rule validation sees it (with `wan`: whether some uplink has NPTv6); null with IPv6 off. */
export function ipv6LayoutOf(
  ipv6: Ipv6Config,
  wan: readonly UplinkConfig[] = [],
): Ipv6Layout | null {
  return ipv6.enabled && ipv6.lan !== null
    ? {
      lanAddress: ipv6.lan.address,
      lanNetwork: ipv6.lan.network,
      npt6: wan.some((u) => u.npt6 !== null),
    }
    : null;
}

/** The management API's base URL, `https://192.0.2.1:8443/` or `https://[2001:db8:1::1]:8443/`. */
export function managementUrl(config: Config): string {
  return `https://${urlHost(config.management.listen)}:${config.management.port}/`;
}
