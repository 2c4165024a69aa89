/** Flow timeouts in seconds, after Linux's nf_conntrack defaults. */

/** Per-state and per-protocol timeouts, in seconds. */
export interface Timeouts {
  /** TCP SYN seen, waiting for SYN/ACK (also a freshly created TCP flow). */
  tcpSynSent: number;
  /** TCP SYN/ACK seen, waiting for the final ACK. */
  tcpSynRecv: number;
  /** TCP established (5 days in Linux). */
  tcpEstablished: number;
  /** TCP one FIN seen. */
  tcpFinWait: number;
  /** TCP half closed. */
  tcpCloseWait: number;
  /** TCP both FINs seen. */
  tcpLastAck: number;
  /** TCP closed, lingering for late segments. */
  tcpTimeWait: number;
  /** TCP reset. */
  tcpClose: number;
  /**
   * Cap for a TCP flow whose recent packets all went one way unanswered (a
   * peer that vanished), standing in for Linux's unacknowledged/retrans timeouts.
   */
  tcpUnacknowledged: number;
  /** UDP, nothing seen in the reply direction yet. */
  udpUnreplied: number;
  /** UDP, answered at least once. */
  udpReplied: number;
  /** ICMP echo. */
  icmp: number;
  /** Any other protocol. */
  generic: number;
}

/** Linux's default timeouts. */
export const DEFAULT_TIMEOUTS: Readonly<Timeouts> = Object.freeze({
  tcpSynSent: 120,
  tcpSynRecv: 60,
  tcpEstablished: 432000,
  tcpFinWait: 120,
  tcpCloseWait: 60,
  tcpLastAck: 30,
  tcpTimeWait: 120,
  tcpClose: 10,
  tcpUnacknowledged: 300,
  udpUnreplied: 30,
  udpReplied: 120,
  icmp: 30,
  generic: 600,
});

/**
 * Merges `partial` over the defaults; throws on a negative or non-integer
 * value (configuration time, not the hot path).
 */
export function resolveTimeouts(partial: Partial<Timeouts> = {}): Timeouts {
  const out: Timeouts = { ...DEFAULT_TIMEOUTS, ...partial };
  for (const [name, value] of Object.entries(out)) {
    if (!Number.isInteger(value) || value < 0 || value > 0x7fffffff) {
      throw new RangeError(
        `Cannot use timeout "${name}": ${value} is not a whole number of seconds`,
      );
    }
  }
  return out;
}

/** The timeout of each TCP state code (index = state), NONE using SYN_SENT's. */
export function tcpStateTimeouts(t: Timeouts): Uint32Array {
  return Uint32Array.of(
    t.tcpSynSent,
    t.tcpSynSent,
    t.tcpSynRecv,
    t.tcpEstablished,
    t.tcpFinWait,
    t.tcpCloseWait,
    t.tcpLastAck,
    t.tcpTimeWait,
    t.tcpClose,
  );
}

/**
 * Idle timeout of flows delivered to the appliance itself (the management
 * port): only the client's half crosses the TUN, so no TCP state ends them.
 */
export const LOCAL_FLOW_TIMEOUT_S = 3600;
