/**
 * Real IPv6 packets for tests, captured with tcpdump on one end of a veth pair
 * between two network namespaces (Linux 6.x, transmit checksum offload off so
 * every checksum is complete, MTU 1280): 2001:db8::1 is the client, 2001:db8::2
 * the peer; the link-local addresses are the kernel's own.
 */

import { fromHex } from "./_fixtures.ts";

/** Hex strings of the captured packets. */
export const FIXTURE6_HEX = {
  /** `nc -6 -p 40000 2001:db8::2 22`: SYN with MSS 1220, SACK-permitted, timestamps, window scale. */
  tcpSyn: "6004e46f0028064020010db800000000000000000000000120010db8000000000000000000000002" +
    "9c40001699ca66ce00000000a002fc94aac40000020404c40402080ac329e605000000000103030a",
  /** The peer's RST+ACK to `tcpSyn` (nothing listens on port 22). */
  tcpRst: "6007c18c0014064020010db800000000000000000000000220010db8000000000000000000000001" +
    "00169c400000000099ca66cf50140000b76b0000",
  /** `nc -6 -u -p 40001 2001:db8::2 53`, payload "knockgate-fixture". */
  udp: "600cba5b0019114020010db800000000000000000000000120010db8000000000000000000000002" +
    "9c410035001941a56b6e6f636b676174652d66697874757265",
  /** The kernel's port unreachable for `udp`, quoting the whole datagram. */
  icmpPortUnreachable:
    "600ab55300493a4020010db800000000000000000000000220010db8000000000000000000" +
    "0000010104776c00000000600cba5b0019114020010db800000000000000000000000120010db800000000000000" +
    "00000000029c410035001941a56b6e6f636b676174652d66697874757265",
  /** `ping -6 -s 16 -p 6b6e6f636b`: echo request, id 0x0e94, seq 1. */
  icmpEcho: "6007ecf200183a4020010db800000000000000000000000120010db8000000000000000000000002" +
    "8000fd480e9400014ced0e6b00000000b3010a0000000000",
  /** A neighbour solicitation for 2001:db8::2 with a source link-layer address option. */
  neighborSolicit:
    "6000000000203aff20010db8000000000000000000000001ff0200000000000000000001ff000002" +
    "8700a9d50000000020010db800000000000000000000000201010ea2c6d09edf",
  /** An MLDv2 report to ff02::16 behind a hop-by-hop header with router alert and PadN. */
  mld2Report: "6000000000380001fe800000000000000ca2c6fffed09edfff020000000000000000000000000016" +
    "3a000502000001008f005dec0000000204000000ff0200000000000000000001ffd09edf04000000ff02000000" +
    "00000000000001ff000001",
} as const;

/** A fresh copy of a captured packet. */
export function fixture6(name: keyof typeof FIXTURE6_HEX): Uint8Array {
  return fromHex(FIXTURE6_HEX[name]);
}

/**
 * The two fragments (ident 0x9a32bc80) of `ping -6 -s 1400` over the 1280-byte
 * link: an echo request whose data is ping's 16-byte timestamp and then bytes
 * counting up from 0x10. The second fragment holds data from offset 1232.
 */
export function fragmentedEcho(): [Uint8Array, Uint8Array] {
  const head1 = fromHex(
    "6007ecf204d82c4020010db800000000000000000000000120010db8000000000000000000000002" +
      "3a0000019a32bc808000059d0e9800014ced0e6b000000003a250a0000000000",
  );
  const head2 = fromHex(
    "6007ecf200b82c4020010db800000000000000000000000120010db8000000000000000000000002" +
      "3a0004d09a32bc80",
  );
  const datagram = new Uint8Array(1408); // ICMPv6 header, 16-byte timestamp, 1384 counting bytes
  datagram.set(head1.subarray(48), 0);
  for (let i = 24; i < datagram.length; i++) datagram[i] = (0x10 + i - 24) & 0xff;
  const f1 = new Uint8Array(1280), f2 = new Uint8Array(224);
  f1.set(head1.subarray(0, 48));
  f1.set(datagram.subarray(0, 1232), 48);
  f2.set(head2);
  f2.set(datagram.subarray(1232), 48);
  return [f1, f2];
}
