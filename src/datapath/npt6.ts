/**
 * NPTv6 (RFC 6296) per uplink, as routers offer it ("NPt": an uplink, an
 * inside prefix, an outside prefix): the LAN prefix (`ipv6.lan.network`)
 * leaves an uplink with `npt6` as its outside prefix and comes back to it.
 * The mapping is stateless and checksum-neutral (`packet/nptv6.ts`), but
 * the appliance still tracks every flow (the gate needs state): a flow's
 * tuples name the inside and the outside address, so its packets are
 * rewritten by the flow entry like NAT66's, and since the outside address
 * has the inside one's checksum sum, no L4 checksum changes.
 *
 * - LAN to WAN: a new flow from the LAN leaves from the outside address of
 *   the uplink new flows use now (`pick`): the first in the masquerade order
 *   that has `npt6` and is up by its probe, else the first of them; uplinks
 *   with `npt6` outside the masquerade list come after it. Flows keep the
 *   address they started with.
 * - WAN to LAN: a new flow to an outside address is judged as a pinhole to
 *   the inside host would be (`Admission6`).
 *
 * This file maps addresses only; `Admission6` builds the flows. No
 * allocation and no throw per packet.
 */
import {
  type Ipv6Prefix,
  ipv6PrefixContainsBytes,
  type Nptv6Map,
  nptv6Map,
  nptv6Translate,
  parseIpv6Prefix,
} from "../packet/mod.ts";
import type { DatapathSettings } from "./messages.ts";

/** Which uplinks are up for IPv6 (`Admission.uplinkUp6`), by index in settings order. */
export interface UplinkHealth {
  uplinkUp(i: number): boolean;
}

/** The NPTv6 mappings of every uplink with `npt6`; one per `Admission6`. */
export class Npt6 {
  /** An address `toInside` or `toOutside` wrote. */
  readonly scratch = new Uint8Array(16);
  /** Per entry: the uplink's index (settings order), its outside prefix, both mappings. */
  #uplink = new Int32Array(0);
  #outside: Ipv6Prefix[] = [];
  #out: Nptv6Map[] = [];
  #in: Nptv6Map[] = [];
  /** Entries in the order new flows from the LAN try them. */
  #order = new Int32Array(0);

  constructor(s: DatapathSettings) {
    this.setSettings(s);
  }

  /** Takes the uplinks' `npt6` against the LAN prefix; throws (configuration time) when they do not map. */
  setSettings(s: DatapathSettings): void {
    const lan = s.ipv6 ? parseIpv6Prefix(s.ipv6.lanNetwork) : null;
    const entries = lan === null ? [] : s.uplinks.flatMap((u, i) => {
      if (!u.npt6) return [];
      const outside = parseIpv6Prefix(u.npt6.outside);
      if (outside === null) throw new Error(`uplink "${u.name}": npt6 ${u.npt6.outside}`);
      return [{ i, name: u.name, outside }];
    });
    this.#uplink = Int32Array.from(entries, (e) => e.i);
    this.#outside = entries.map((e) => e.outside);
    this.#out = entries.map((e) => nptv6Map(lan!, e.outside));
    this.#in = entries.map((e) => nptv6Map(e.outside, lan!));
    const names = entries.map((e) => e.name);
    const first = s.masquerade.map((n) => names.indexOf(n)).filter((e) => e >= 0);
    const rest = entries.map((_, e) => e).filter((e) => !first.includes(e));
    this.#order = Int32Array.from([...new Set(first), ...rest]);
  }

  /** True when some uplink has `npt6`. */
  get active(): boolean {
    return this.#order.length > 0;
  }

  /** The entry whose outside prefix holds the address at `buf[off..off+16)`, or -1. */
  outsideOf(buf: Uint8Array, off: number): number {
    const o = this.#outside;
    for (let e = 0; e < o.length; e++) if (ipv6PrefixContainsBytes(o[e], buf, off)) return e;
    return -1;
  }

  /** The entry new flows from the LAN leave by now (see the module comment); -1 when none. */
  pick(health: UplinkHealth): number {
    const order = this.#order;
    for (let k = 0; k < order.length; k++) {
      if (health.uplinkUp(this.#uplink[order[k]])) return order[k];
    }
    return order.length > 0 ? order[0] : -1;
  }

  /** The uplink (settings index) of entry `e`. */
  uplinkOf(e: number): number {
    return this.#uplink[e];
  }

  /**
   * Writes to `scratch` the outside address of entry `e` for the LAN address
   * at `buf[off..]`; false when RFC 6296 cannot map it (an all-ones word).
   */
  toOutside(e: number, buf: Uint8Array, off: number): boolean {
    return this.#map(this.#out[e], buf, off);
  }

  /** Writes to `scratch` the inside (LAN) address for the outside address at `buf[off..]` of entry `e`. */
  toInside(e: number, buf: Uint8Array, off: number): boolean {
    return this.#map(this.#in[e], buf, off);
  }

  #map(m: Nptv6Map, buf: Uint8Array, off: number): boolean {
    const s = this.scratch;
    for (let i = 0; i < 16; i++) s[i] = buf[off + i];
    return nptv6Translate(m, s, 0);
  }
}
