/**
 * The configured uplinks joined with the data plane's view of their health
 * (`UplinkStatus`, from the pipeline's `uplinks` query), as `GET /uplinks`,
 * the settings' network section and the metrics show them.
 */
import type { Config } from "../config/types.ts";
import type { DatapathApi } from "../datapath/control.ts";
import type { UplinkStatus } from "../datapath/messages.ts";
import { lanEgress6Uplink } from "../host/routing.ts";

/** A data plane that may report uplink health (older ones, and some test fakes, cannot). */
type UplinkReporter = DatapathApi & { uplinks?: () => Promise<UplinkStatus[]> };

/** The uplinks' health, or null when the data plane cannot tell (no such query, or it failed). */
export async function uplinkStatuses(datapath: DatapathApi): Promise<UplinkStatus[] | null> {
  const dp = datapath as UplinkReporter;
  if (typeof dp.uplinks !== "function") return null;
  try {
    return await dp.uplinks();
  } catch {
    return null;
  }
}

/** An uplink's addresses as configured: `a.b.c.d/n`. */
export function uplinkAddresses(u: Config["wan"][number]): string[] {
  return u.addresses.map((a) => `${a.address}/${a.prefixLength}`);
}

/** An uplink's IPv6 addresses as configured: `2001:db8::1/64` (none with IPv6 off). */
export function uplinkAddresses6(u: Config["wan"][number]): string[] {
  return u.addresses6.map((a) => `${a.address}/${a.prefixLength}`);
}

/** One uplink as `GET /uplinks` shows it. */
export interface UplinkView {
  name: string;
  interface: string;
  addresses: string[];
  addresses6: string[];
  /** NPTv6: the LAN prefix leaves it as `outside`; null: none. */
  npt6: { outside: string } | null;
  gateway: string | null;
  gateway6: string | null;
  /** The LAN prefix's IPv6 leaves by it now (`host/routing.ts` `lanEgress6Uplink`). */
  lanIpv6Egress: boolean;
  management: boolean;
  /** Index in the masquerade preference list; null when masquerade never uses it. */
  masqueradeOrder: number | null;
  status: UplinkStatus | null;
}

/** Every configured uplink, in order, with its status when the data plane reported one. */
export function uplinkViews(config: Config, statuses: UplinkStatus[] | null): UplinkView[] {
  const byName = new Map((statuses ?? []).map((s) => [s.name, s]));
  const knock = config.management.wanAccess === "knock";
  const up6 = config.wan.map((u) => byName.get(u.name)?.ipv6?.up ?? true);
  const egress6 = lanEgress6Uplink(
    { uplinks: config.wan, masquerade: config.masquerade.uplinks, ipv6: config.ipv6 },
    up6,
  )?.name;
  return config.wan.map((u) => {
    const order = config.masquerade.uplinks.indexOf(u.name);
    return {
      name: u.name,
      interface: u.interface,
      addresses: uplinkAddresses(u),
      addresses6: uplinkAddresses6(u),
      npt6: u.npt6 && { outside: u.npt6.outside },
      gateway: u.gateway,
      gateway6: u.gateway6,
      lanIpv6Egress: u.name === egress6,
      management: knock && config.management.uplinks.includes(u.name),
      masqueradeOrder: order === -1 ? null : order,
      status: byName.get(u.name) ?? null,
    };
  });
}
