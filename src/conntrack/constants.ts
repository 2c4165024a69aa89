/**
 * Numeric codes shared by the connection tracker: directions, status bits,
 * TCP states, verdicts. Plain numbers so the hot path compares integers and
 * allocates nothing. Protocol numbers and TCP flags are the packet layer's,
 * re-exported here for the tracker's users.
 */

export { PROTO_ICMP, PROTO_TCP, PROTO_UDP } from "../packet/ipv4.ts";
export { TCP_ACK, TCP_FIN, TCP_PSH, TCP_RST, TCP_SYN } from "../packet/tcp.ts";

/** Direction of the packet that opened the flow (handle bit 0 clear). */
export const DIR_ORIGINAL = 0;
/** Direction of the answers (handle bit 0 set). */
export const DIR_REPLY = 1;

/** Status bit: a packet was seen in the reply direction. */
export const STATUS_SEEN_REPLY = 0x01;
/** Status bit: the flow proved two-way (TCP handshake done, UDP answered); never early-dropped. */
export const STATUS_ASSURED = 0x02;
/** Status bit: the flow is being torn down; lookups no longer find it. */
export const STATUS_DYING = 0x04;

/**
 * Suggested bits for the datapath's own `ConnTable.flags` array. The tracker
 * never reads them; it clears them when a slot is freed.
 */
export const FLAG_GATED = 0x0001;
/** Suggested datapath flag: the flow is delivered to the appliance itself. */
export const FLAG_LOCAL = 0x0002;
/** Suggested datapath flag: source NAT (masquerade) applies. */
export const FLAG_SNAT = 0x0004;
/** Suggested datapath flag: destination NAT (port forward) applies. */
export const FLAG_DNAT = 0x0008;
/** Suggested datapath flag: LAN to LAN through the WAN address (hairpin). */
export const FLAG_HAIRPIN = 0x0010;

/** TCP state: created, no packet tracked yet. */
export const TCP_NONE = 0;
/** TCP state: SYN seen from the originator. */
export const TCP_SYN_SENT = 1;
/** TCP state: SYN/ACK seen from the responder. */
export const TCP_SYN_RECV = 2;
/** TCP state: handshake complete. */
export const TCP_ESTABLISHED = 3;
/** TCP state: one side sent FIN. */
export const TCP_FIN_WAIT = 4;
/** TCP state: the FIN was acknowledged by the other side (half closed). */
export const TCP_CLOSE_WAIT = 5;
/** TCP state: both sides sent FIN, waiting for the last ACK. */
export const TCP_LAST_ACK = 6;
/** TCP state: the last ACK was seen. */
export const TCP_TIME_WAIT = 7;
/** TCP state: reset seen. */
export const TCP_CLOSE = 8;

const TCP_STATE_NAMES = [
  "NONE",
  "SYN_SENT",
  "SYN_RECV",
  "ESTABLISHED",
  "FIN_WAIT",
  "CLOSE_WAIT",
  "LAST_ACK",
  "TIME_WAIT",
  "CLOSE",
] as const;

/** A TCP state's name, as `conntrack -L` prints it. */
export type TcpStateName = typeof TCP_STATE_NAMES[number];

/** The name of TCP state `state` ("NONE" for an unknown code). */
export function tcpStateName(state: number): TcpStateName {
  return TCP_STATE_NAMES[state] ?? "NONE";
}

/** Verdict of `track()`: the packet belongs to the flow; forward it. */
export const TRACK_ACCEPT = 0;
/** Verdict of `track()`: the packet does not fit the flow's state; drop it. */
export const TRACK_INVALID = 1;
/**
 * Verdict of `track()`: a SYN reopened a TIME_WAIT/CLOSE flow. The slot now
 * holds a new connection on the same tuples (counters and seen-reply/assured
 * reset, datapath flags kept); the datapath may re-run its admission checks.
 */
export const TRACK_REOPEN = 2;

/**
 * Verdict of `track()`: a TCP segment lies outside the flow's sequence or
 * acknowledgment window (a blind RST or SYN, stale or forged data); drop it.
 * The flow's state and windows are untouched.
 */
export const TRACK_OUT_OF_WINDOW = 3;

/** A `track()` verdict code. */
export type TrackVerdict =
  | typeof TRACK_ACCEPT
  | typeof TRACK_INVALID
  | typeof TRACK_REOPEN
  | typeof TRACK_OUT_OF_WINDOW;

/** Result of `create()`: a tuple of the new flow is already live (a NAT clash, or a racing duplicate). */
export const CREATE_CLASH = -1;
/** Result of `create()`: no free slot, and early drop found no unassured flow to evict. */
export const CREATE_FULL = -2;

/** Why a flow left the table (second argument of `onExpire`): its timer ran out. */
export const GONE_TIMEOUT = 0;
/** Why a flow left the table: early-dropped to make room for a new flow. */
export const GONE_EVICTED = 1;
/** Why a flow left the table: `kill()` was called for it. */
export const GONE_KILLED = 2;
