/**
 * A raw ICMPv6 socket that sends echo requests from one uplink IPv6 address
 * to one target and reads the replies: the IPv6 gateway probe's socket (the
 * monitor is `datapath/uplink_probe6.ts`).
 *
 * Unlike the IPv4 probe's, this socket reads its replies itself. ICMPv6 to a
 * WAN IPv6 address stays with the kernel (the rule at pref 6 in
 * `host/routing.ts`: neighbour discovery must), so an echo reply never
 * reaches the TUN; the fail-closed table's input chain lets one through only
 * from the target to this address (`probe6-reply`), and the socket takes it.
 *
 * The socket is `SOCK_RAW`/`IPPROTO_ICMPV6` (CAP_NET_RAW), close-on-exec and
 * non-blocking; the kernel fills in the ICMPv6 checksum (RFC 3542 §3.1, it
 * always does for ICMPv6 raw sockets). It is bound to the source address
 * (`IPV6_FREEBIND`: an address still in duplicate address detection, or not
 * yet configured, does not stop it opening; its sends fail until the address
 * is usable) and connected to the target, which limits what it queues to
 * messages from the target to the source; `ICMP6_FILTER` narrows that to
 * echo replies. A link-local target is scoped to the uplink's interface.
 *
 * Errors are values: `open` returns an {@linkcode ErrnoError}, `send` and
 * `receive` a negative errno (`-EAGAIN`: nothing to read).
 */
import {
  AF_INET6,
  bindSocket,
  closeFd,
  connectSocket,
  ErrnoError,
  ICMP6_FILTER,
  interfaceIndex,
  ioctlInto,
  IPPROTO_ICMPV6,
  openSocket,
  receive,
  sendTo,
  setSocketOption,
  SOCK_CLOEXEC,
  SOCK_NONBLOCK,
  SOCK_RAW,
  SOCKADDR_IN6_LEN,
  writeSockaddrIn6,
} from "./libc.ts";

/** setsockopt(2) level of IPv6 options. */
const SOL_IPV6 = 41;
/** IPv6 socket option: bind to an address the host does not have (yet). */
const IPV6_FREEBIND = 78;
/** ioctl: the kernel's receive time of the socket's last message, a `struct timeval`. */
const SIOCGSTAMP = 0x8906;
/** ICMPv6 echo reply (RFC 4443 §4.2). */
const ECHO_REPLY = 129;

/** True for a link-local unicast address (fe80::/10), given as 16 bytes. */
function linkLocal(a: Uint8Array): boolean {
  return a[0] === 0xfe && (a[1] & 0xc0) === 0x80;
}

/** A raw ICMPv6 socket from one address to one target, for echo requests and their replies. */
export class Icmp6Socket {
  readonly #fd: number;
  readonly #to: Uint8Array;
  readonly #stamp = new Uint8Array(16);
  readonly #stampView = new DataView(this.#stamp.buffer);
  #closed = false;

  private constructor(fd: number, to: Uint8Array) {
    this.#fd = fd;
    this.#to = to;
  }

  /**
   * Opens a socket from `source` to `target` (16 bytes each, network order);
   * a link-local target is on interface `iface`. The socket, or the error
   * that stopped it (EPERM without CAP_NET_RAW, ENODEV when `iface` is not
   * there for a link-local target).
   */
  static open(source: Uint8Array, target: Uint8Array, iface: string): Icmp6Socket | ErrnoError {
    let scope = 0;
    if (linkLocal(target)) {
      scope = interfaceIndex(iface);
      if (scope === 0) return new ErrnoError(`Cannot find interface ${iface}`, 19); // ENODEV
    }
    let fd: number;
    try {
      fd = openSocket(AF_INET6, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_ICMPV6);
    } catch (e) {
      return e as ErrnoError;
    }
    // struct icmp6_filter: eight 32-bit words, bit (type & 31) of word (type >> 5) blocks it.
    const filter = new Uint8Array(32).fill(0xff);
    filter[(ECHO_REPLY >> 5) * 4 + ((ECHO_REPLY & 31) >> 3)] &= ~(1 << (ECHO_REPLY & 7));
    let r = setSocketOption(fd, IPPROTO_ICMPV6, ICMP6_FILTER, filter);
    if (r < 0) return Icmp6Socket.#fail(fd, "Cannot set ICMP6_FILTER", -r);
    r = setSocketOption(fd, SOL_IPV6, IPV6_FREEBIND, new Uint8Array([1, 0, 0, 0]));
    if (r < 0) return Icmp6Socket.#fail(fd, "Cannot set IPV6_FREEBIND", -r);
    const from = new Uint8Array(SOCKADDR_IN6_LEN);
    writeSockaddrIn6(from, source, 0);
    r = bindSocket(fd, from);
    if (r < 0) return Icmp6Socket.#fail(fd, "Cannot bind the ICMPv6 socket", -r);
    const to = new Uint8Array(SOCKADDR_IN6_LEN);
    writeSockaddrIn6(to, target, scope);
    r = connectSocket(fd, to);
    if (r < 0) return Icmp6Socket.#fail(fd, "Cannot connect the ICMPv6 socket", -r);
    return new Icmp6Socket(fd, to);
  }

  static #fail(fd: number, what: string, errno: number): ErrnoError {
    closeFd(fd);
    return new ErrnoError(what, errno);
  }

  /**
   * Sends the ICMPv6 message in `msg[0..len)` to the target (the kernel
   * writes its checksum): the bytes sent, or `-errno`. Never throws.
   */
  send(msg: Uint8Array, len: number): number {
    if (this.#closed) return -9; // EBADF
    return sendTo(this.#fd, msg, len, this.#to);
  }

  /**
   * Reads one queued echo reply (the ICMPv6 message, no IPv6 header) into
   * `buf`: its length, or `-errno` (`-EAGAIN` when none is queued). Never
   * blocks, never throws.
   */
  receive(buf: Uint8Array): number {
    if (this.#closed) return -9;
    return receive(this.#fd, buf);
  }

  /**
   * When the kernel received the message `receive` read last, ms since the
   * epoch (the wall clock, to the microsecond), or NaN when it cannot tell.
   */
  receivedAt(): number {
    if (this.#closed || ioctlInto(this.#fd, SIOCGSTAMP, this.#stamp) < 0) return NaN;
    const v = this.#stampView;
    return Number(v.getBigInt64(0, true)) * 1000 + Number(v.getBigInt64(8, true)) / 1000;
  }

  /** Closes the socket (idempotent). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    closeFd(this.#fd);
  }
}
