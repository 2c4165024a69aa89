/**
 * A raw ICMP socket that sends echo requests from one uplink address: the
 * gateway health probe's sender (the monitor is `datapath/uplink_monitor.ts`).
 *
 * The socket is `SOCK_RAW`/`IPPROTO_ICMP` (CAP_NET_RAW), close-on-exec and
 * non-blocking, bound to the uplink's address: the kernel writes the IPv4
 * header with that source, and the policy rule `from ADDRESS lookup TABLE`
 * (`host/routing.ts`) sends it through the uplink's own table, to its
 * gateway, whatever the main table says. The caller writes the ICMP message,
 * checksum included (a raw socket does not compute it).
 *
 * The socket never reads: the reply arrives on the WAN interface, which is
 * steered into the TUN, so the data plane sees it as a packet. `ICMP_FILTER`
 * set to every type keeps the socket's receive queue empty all the same (a
 * raw ICMP socket is handed a copy of every ICMP message delivered locally).
 *
 * Errors are values: `open` returns an {@linkcode ErrnoError}, `send` a
 * negative errno (`-ENETUNREACH` while the uplink's link is down).
 */
import {
  AF_INET,
  bindSocket,
  closeFd,
  ErrnoError,
  ICMP_FILTER,
  IPPROTO_ICMP,
  openSocket,
  sendTo,
  setSocketOption,
  SOCK_CLOEXEC,
  SOCK_NONBLOCK,
  SOCK_RAW,
  SOCKADDR_IN_LEN,
  SOL_RAW,
  writeSockaddrIn,
} from "./libc.ts";

/** A raw ICMP socket bound to one source address, for sending echo requests. */
export class IcmpSocket {
  readonly #fd: number;
  /** The destination `sockaddr_in`, rewritten per send (no allocation). */
  readonly #to = new Uint8Array(SOCKADDR_IN_LEN);
  #closed = false;

  private constructor(fd: number, readonly source: number) {
    this.#fd = fd;
  }

  /**
   * Opens a socket bound to `source` (an IPv4 address, host order); the
   * socket, or the error that stopped it (EPERM without CAP_NET_RAW,
   * EADDRNOTAVAIL when the address is not the host's).
   */
  static open(source: number): IcmpSocket | ErrnoError {
    let fd: number;
    try {
      fd = openSocket(AF_INET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_ICMP);
    } catch (e) {
      return e as ErrnoError;
    }
    // Every bit set: no ICMP type is queued for reading.
    const filter = new Uint8Array([0xff, 0xff, 0xff, 0xff]);
    let r = setSocketOption(fd, SOL_RAW, ICMP_FILTER, filter);
    if (r < 0) return IcmpSocket.#fail(fd, "Cannot set ICMP_FILTER", -r);
    const sa = new Uint8Array(SOCKADDR_IN_LEN);
    writeSockaddrIn(sa, source, 0);
    r = bindSocket(fd, sa);
    if (r < 0) return IcmpSocket.#fail(fd, "Cannot bind the ICMP socket", -r);
    return new IcmpSocket(fd, source);
  }

  static #fail(fd: number, what: string, errno: number): ErrnoError {
    closeFd(fd);
    return new ErrnoError(what, errno);
  }

  /**
   * Sends the ICMP message in `msg[0..len)` to `target` (host order): the
   * bytes sent, or `-errno` (`-EAGAIN` when the send buffer is full). Never
   * throws, never allocates.
   */
  send(msg: Uint8Array, len: number, target: number): number {
    if (this.#closed) return -9; // EBADF
    writeSockaddrIn(this.#to, target, 0);
    return sendTo(this.#fd, msg, len, this.#to);
  }

  /** Closes the socket (idempotent). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    closeFd(this.#fd);
  }
}
