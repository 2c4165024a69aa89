/**
 * Shared pieces of the host lab tests: packet captures in a lab namespace
 * and the fail-closed nftables table's counters in the appliance namespace.
 */
import assert from "node:assert/strict";
import type { Names, RunningLab } from "../../scripts/lab/appliance.ts";
import { sh, shOk, spawnIn, until } from "./_helpers.ts";

/** A running tcpdump. */
export interface Capture {
  /** Ends the capture and returns the packets it printed, one line each. */
  stop(): Promise<string[]>;
}

/**
 * Starts tcpdump on `iface` in `ns` with `filter` (verbose, so TTLs show,
 * unless `verbose` is false: then one line a packet with its addresses);
 * resolves once it is listening.
 */
export async function capture<N extends Names<N>>(
  lab: RunningLab<N>,
  ns: keyof N,
  filter: string,
  iface = "eth0",
  verbose = true,
): Promise<Capture> {
  const argv = ["tcpdump", "-n", "-l", ...(verbose ? ["-v"] : []), "-i", iface, filter];
  const dump = spawnIn(lab, ns, argv, 120);
  assert.ok(await until(() => dump.errors().includes("listening on"), 5000), dump.errors());
  return {
    stop: async () => {
      // Let packets in flight arrive before the capture ends.
      await new Promise((r) => setTimeout(r, 500));
      const r = await dump.stop();
      // With -v a packet may take two lines; the continuation is indented.
      return r.stdout.split("\n").filter((l) => l !== "" && !/^\s/.test(l));
    },
  };
}

/** The packets counted by the rules of `chain` whose comment is `comment`. */
export async function nftCount(lab: RunningLab, chain: string, comment: string): Promise<number> {
  const out = await shOk(lab, "appliance", ["nft", "list", "chain", "inet", "knockgate", chain]);
  let n = 0;
  for (const line of out.split("\n")) {
    const m = line.match(/counter packets (\d+) bytes \d+ .*comment "([^"]+)"/);
    if (m && m[2] === comment) n += Number(m[1]);
  }
  return n;
}

/** Whether the fail-closed table is installed in the appliance namespace. */
export async function failClosedInstalled(lab: RunningLab): Promise<boolean> {
  const r = await sh(lab, "appliance", ["nft", "list", "table", "inet", "knockgate"], 5);
  return r.code === 0 && r.stdout.includes("policy drop");
}

/**
 * Netfilter's conntrack entries in the appliance namespace: null when the
 * kernel has no conntrack here at all (module not loaded).
 */
export async function kernelConntrack(lab: RunningLab): Promise<number | null> {
  const r = await sh(lab, "appliance", ["cat", "/proc/sys/net/netfilter/nf_conntrack_count"], 5);
  return r.code === 0 ? Number(r.stdout.trim()) : null;
}
