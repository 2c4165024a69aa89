/**
 * Synchronous libc bindings for the TUN device, loaded on first use.
 *
 * Every call is a plain synchronous FFI call (never `nonblocking: true`: an
 * awaited FFI call costs ~32 us). Control calls (open, ioctl, socket) throw an
 * {@linkcode ErrnoError}; the hot-path calls (readv, writev, poll) return a
 * count or `-errno` and never throw.
 *
 * The hot path uses readv/writev rather than read/write: their only integer
 * arguments are 32-bit, which keeps them on V8's fast-call path (a 64-bit
 * `size_t` argument costs ~90 ns more per call), and the iovec lets a write
 * take the virtio-net header and the packet from two places.
 */

/** open(2) flag: read and write. */
export const O_RDWR = 0x2;
/** open(2) flag: non-blocking I/O. */
export const O_NONBLOCK = 0x800;
/** open(2) flag: close on exec. */
export const O_CLOEXEC = 0x80000;
/** socket(2) domain: IPv4. */
export const AF_INET = 2;
/** socket(2) domain: IPv6. */
export const AF_INET6 = 10;
/** socket(2) type: datagram. */
export const SOCK_DGRAM = 2;
/** socket(2) type: raw. */
export const SOCK_RAW = 3;
/** socket(2) type flag: non-blocking. */
export const SOCK_NONBLOCK = 0x800;
/** socket(2) type flag: close on exec. */
export const SOCK_CLOEXEC = 0x80000;
/** IP protocol number of ICMP (the protocol of a raw ICMP socket). */
export const IPPROTO_ICMP = 1;
/** setsockopt(2) level of raw sockets. */
export const SOL_RAW = 255;
/** Raw ICMP socket option: a bit mask of the ICMP types not to receive (`linux/icmp.h`). */
export const ICMP_FILTER = 1;
/** IP protocol number of ICMPv6, also the setsockopt(2) level of its options. */
export const IPPROTO_ICMPV6 = 58;
/** Raw ICMPv6 socket option: `struct icmp6_filter`, a bit set per type blocked (`linux/icmpv6.h`). */
export const ICMP6_FILTER = 1;
/** poll(2) event: data to read. */
export const POLLIN = 0x1;
/** eventfd(2) flag: non-blocking reads and writes (the value of `O_NONBLOCK`). */
export const EFD_NONBLOCK = 0x800;
/** eventfd(2) flag: close on exec (the value of `O_CLOEXEC`). */
export const EFD_CLOEXEC = 0x80000;
/** errno: interrupted system call. */
export const EINTR = 4;
/** errno: try again (nothing to read, or the queue is full). */
export const EAGAIN = 11;

const ERRNO_NAMES: Record<number, string> = {
  1: "EPERM",
  2: "ENOENT",
  4: "EINTR",
  5: "EIO",
  6: "ENXIO",
  9: "EBADF",
  11: "EAGAIN",
  12: "ENOMEM",
  13: "EACCES",
  14: "EFAULT",
  16: "EBUSY",
  17: "EEXIST",
  19: "ENODEV",
  22: "EINVAL",
  23: "ENFILE",
  24: "EMFILE",
  25: "ENOTTY",
  28: "ENOSPC",
  38: "ENOSYS",
  90: "EMSGSIZE",
  95: "EOPNOTSUPP",
  97: "EAFNOSUPPORT",
  99: "EADDRNOTAVAIL",
  101: "ENETUNREACH",
  105: "ENOBUFS",
  113: "EHOSTUNREACH",
};

/** The symbolic name of an errno value, such as `EAGAIN`, or `E<n>`. */
export function errnoName(code: number): string {
  return ERRNO_NAMES[code] ?? `E${code}`;
}

/** A failed libc control call, carrying the errno and its name. */
export class ErrnoError extends Error {
  /** The errno value, such as 19. */
  readonly errno: number;
  /** The errno name, such as `ENODEV`. */
  readonly code: string;
  /** `what` says what failed, as in `Cannot open /dev/net/tun`. */
  constructor(what: string, errno: number) {
    super(`${what}: ${errnoName(errno)} (errno ${errno})`);
    this.name = "ErrnoError";
    this.errno = errno;
    this.code = errnoName(errno);
  }
}

const SYMBOLS = {
  open: { parameters: ["buffer", "i32", "i32"], result: "i32" },
  close: { parameters: ["i32"], result: "i32" },
  // ssize_t results are read as i32: the low half of rax, exact below 2 GiB.
  readv: { parameters: ["i32", "buffer", "i32"], result: "i32" },
  writev: { parameters: ["i32", "buffer", "i32"], result: "i32" },
  ioctl: { parameters: ["i32", "u64", "buffer"], result: "i32" },
  // TUNSETOFFLOAD takes its flags by value, not through a pointer.
  ioctlValue: { name: "ioctl", parameters: ["i32", "u64", "u64"], result: "i32" },
  poll: { parameters: ["buffer", "u64", "i32"], result: "i32" },
  socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
  eventfd: { parameters: ["u32", "i32"], result: "i32" },
  // Addresses as numbers (user-space addresses fit in 53 bits); the length fits 32 bits.
  memcpy: { parameters: ["usize", "usize", "u32"], result: "void" },
  madvise: { parameters: ["usize", "usize", "i32"], result: "i32" },
  bind: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  setsockopt: { parameters: ["i32", "i32", "i32", "buffer", "u32"], result: "i32" },
  sendto: { parameters: ["i32", "buffer", "usize", "i32", "buffer", "u32"], result: "i32" },
  recv: { parameters: ["i32", "buffer", "usize", "i32"], result: "i32" },
  connect: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  if_nametoindex: { parameters: ["buffer"], result: "u32" },
  gettid: { parameters: [], result: "i32" },
  setpriority: { parameters: ["i32", "u32", "i32"], result: "i32" },
  __errno_location: { parameters: [], result: "pointer" },
} as const;

type Libc = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

let lib: Libc | undefined;
let errnoCell: Int32Array | undefined;

/** The libc symbols, opened on first use (needs `--allow-ffi`). */
function libc(): Libc {
  if (lib === undefined) {
    lib = Deno.dlopen("libc.so.6", SYMBOLS).symbols;
    // errno lives in thread-local storage; each Worker loads its own copy of this module.
    const at = lib.__errno_location();
    if (at === null) throw new Error("Cannot load libc: __errno_location returned NULL");
    // A typed array over the errno cell reads in ~1 ns; UnsafePointerView.getInt32 costs ~80 ns.
    errnoCell = new Int32Array(Deno.UnsafePointerView.getArrayBuffer(at, 4));
  }
  return lib;
}

/** The calling thread's errno. */
export function errno(): number {
  libc();
  return errnoCell![0];
}

const encoder = new TextEncoder();

/** Opens `path` with `flags`; returns the fd or throws an {@linkcode ErrnoError}. */
export function openFile(path: string, flags: number): number {
  const fd = libc().open(encoder.encode(`${path}\0`), flags, 0);
  if (fd < 0) throw new ErrnoError(`Cannot open ${path}`, errno());
  return fd;
}

/** Closes `fd`, ignoring errors (there is nothing to do about them). */
export function closeFd(fd: number): void {
  libc().close(fd);
}

/** Creates an eventfd(2) counter with `flags`; returns the fd or throws an {@linkcode ErrnoError}. */
export function openEventFd(flags: number): number {
  const fd = libc().eventfd(0, flags);
  if (fd < 0) throw new ErrnoError("Cannot create an eventfd", errno());
  return fd;
}

/** Creates a socket; returns the fd or throws an {@linkcode ErrnoError}. */
export function openSocket(domain: number, type: number, protocol: number): number {
  const fd = libc().socket(domain, type, protocol);
  if (fd < 0) throw new ErrnoError("Cannot create a socket", errno());
  return fd;
}

/** The size of `struct sockaddr_in`. */
export const SOCKADDR_IN_LEN = 16;

/**
 * Writes a `struct sockaddr_in` for IPv4 address `addr` (host order) and
 * `port` into `sa` (16 bytes): family in host order, port and address in
 * network order.
 */
export function writeSockaddrIn(sa: Uint8Array, addr: number, port: number): void {
  sa.fill(0);
  sa[0] = AF_INET & 0xff; // sa_family_t, little-endian on x86-64
  sa[1] = AF_INET >> 8;
  sa[2] = port >> 8;
  sa[3] = port & 0xff;
  sa[4] = addr >>> 24;
  sa[5] = (addr >>> 16) & 0xff;
  sa[6] = (addr >>> 8) & 0xff;
  sa[7] = addr & 0xff;
}

/** The size of `struct sockaddr_in6`. */
export const SOCKADDR_IN6_LEN = 28;

/**
 * Writes a `struct sockaddr_in6` for the 16 bytes of `addr` (network order),
 * port 0 and `scopeId` (an interface index, for a link-local address; 0
 * otherwise) into `sa` (28 bytes).
 */
export function writeSockaddrIn6(sa: Uint8Array, addr: Uint8Array, scopeId: number): void {
  sa.fill(0);
  sa[0] = AF_INET6 & 0xff; // sa_family_t, little-endian on x86-64
  sa[1] = AF_INET6 >> 8;
  sa.set(addr.subarray(0, 16), 8);
  new DataView(sa.buffer, sa.byteOffset, SOCKADDR_IN6_LEN).setUint32(24, scopeId >>> 0, true);
}

/** bind(2) to the `sockaddr_in` or `sockaddr_in6` in `sa` (its length): 0, or `-errno`. Never throws. */
export function bindSocket(fd: number, sa: Uint8Array): number {
  return libc().bind(fd, sa, sa.length) < 0 ? -errnoCell![0] : 0;
}

/** connect(2) to the socket address in `sa` (its length): 0, or `-errno`. Never throws. */
export function connectSocket(fd: number, sa: Uint8Array): number {
  return libc().connect(fd, sa, sa.length) < 0 ? -errnoCell![0] : 0;
}

/** recv(2) into `buf` without waiting: bytes read, or `-errno` (`-EAGAIN`: none). Never throws. */
export function receive(fd: number, buf: Uint8Array): number {
  const n = libc().recv(fd, buf, BigInt(buf.length), MSG_DONTWAIT);
  return n < 0 ? -errnoCell![0] : n;
}

/** recv(2) flag: do not block. */
const MSG_DONTWAIT = 0x40;

/** The index of the interface named `name` (if_nametoindex(3)), or 0 when there is none. */
export function interfaceIndex(name: string): number {
  return libc().if_nametoindex(encoder.encode(`${name}\0`));
}

/** setsockopt(2) with the option value in `value`: 0, or `-errno`. Never throws. */
export function setSocketOption(
  fd: number,
  level: number,
  name: number,
  value: Uint8Array,
): number {
  return libc().setsockopt(fd, level, name, value, value.length) < 0 ? -errnoCell![0] : 0;
}

/**
 * sendto(2) of the first `len` bytes of `buf` to the socket address in `sa` (its length):
 * bytes sent, or `-errno`. Never throws.
 */
export function sendTo(fd: number, buf: Uint8Array, len: number, sa: Uint8Array): number {
  const n = libc().sendto(fd, buf, BigInt(len), 0, sa, sa.length);
  return n < 0 ? -errnoCell![0] : n;
}

/** ioctl(2) with a pointer argument: 0, or `-errno`. Never throws. */
export function ioctlInto(fd: number, request: number, arg: Uint8Array): number {
  return libc().ioctl(fd, BigInt(request), arg) < 0 ? -errnoCell![0] : 0;
}

/** ioctl(2) with a pointer argument; throws an {@linkcode ErrnoError} saying `what` failed. */
export function ioctlBuffer(fd: number, request: number, arg: Uint8Array, what: string): void {
  if (libc().ioctl(fd, BigInt(request), arg) < 0) throw new ErrnoError(what, errno());
}

/** ioctl(2) with an integer argument; throws an {@linkcode ErrnoError} saying `what` failed. */
export function ioctlValue(fd: number, request: number, value: number, what: string): void {
  if (libc().ioctlValue(fd, BigInt(request), BigInt(value)) < 0) {
    throw new ErrnoError(what, errno());
  }
}

/** readv(2): bytes read, or `-errno`. Never throws. */
export function readv(fd: number, iov: Uint8Array, count: number): number {
  const n = libc().readv(fd, iov, count);
  return n < 0 ? -errnoCell![0] : n;
}

/** writev(2): bytes written, or `-errno`. Never throws. */
export function writev(fd: number, iov: Uint8Array, count: number): number {
  const n = libc().writev(fd, iov, count);
  return n < 0 ? -errnoCell![0] : n;
}

/**
 * poll(2) over `count` pollfd entries: the number ready, or `-errno`. Never
 * throws. `count` is a bigint (nfds_t is 64-bit): keep one, do not build it per call.
 */
export function poll(fds: Uint8Array, count: bigint, timeoutMs: number): number {
  const n = libc().poll(fds, count, timeoutMs);
  return n < 0 ? -errnoCell![0] : n;
}

/** The address of `buf[0]` as a number (user-space addresses fit in 53 bits). */
export function addressOf(buf: Uint8Array): number {
  return Number(Deno.UnsafePointer.value(Deno.UnsafePointer.of(buf)));
}

const knownAddresses = new WeakMap<Uint8Array, number>();

/**
 * `addressOf`, remembered per view without allocating after the first call:
 * a buffer's memory never moves once its address was taken (V8 moves a small
 * on-heap typed array off the heap for good when asked for its backing store).
 */
export function bufferAddress(buf: Uint8Array): number {
  let a = knownAddresses.get(buf);
  if (a === undefined) {
    a = addressOf(buf);
    knownAddresses.set(buf, a);
  }
  return a;
}

/**
 * memcpy(3) of `len` bytes between two addresses (from `bufferAddress`),
 * for large copies into or out of a SharedArrayBuffer: ~0.2 us a call
 * against ~0.3-0.6 ns a byte in JS, where a shared buffer's `TypedArray.set`
 * is a relaxed-atomic copy no faster than a loop. The caller checks bounds.
 */
export function copyBytes(dstAddr: number, srcAddr: number, len: number): void {
  // Deno's types ask a bigint for usize; a number is accepted and avoids allocating one.
  const memcpy = libc().memcpy as unknown as (d: number, s: number, n: number) => void;
  memcpy(dstAddr, srcAddr, len);
}

/**
 * A preallocated array of `struct iovec { void *base; size_t len; }`, filled
 * without allocating: each 64-bit field is written as two 32-bit halves.
 */
export class IoVecs {
  /** The raw iovec array, passed to readv/writev. */
  readonly bytes: Uint8Array;
  #words: Uint32Array;
  /** Room for `count` iovecs. */
  constructor(count: number) {
    this.bytes = new Uint8Array(16 * count);
    this.#words = new Uint32Array(this.bytes.buffer);
  }
  /** Sets iovec `i` to `len` bytes at address `addr` (little-endian halves, x86-64). */
  set(i: number, addr: number, len: number): void {
    const w = this.#words;
    w[4 * i] = addr >>> 0;
    w[4 * i + 1] = Math.floor(addr / 0x100000000);
    w[4 * i + 2] = len;
    w[4 * i + 3] = 0;
  }
}

/** `PRIO_PROCESS`: with a thread id, setpriority applies to that thread alone on Linux. */
const PRIO_PROCESS = 0;

/**
 * Sets the nice value of the calling thread (Linux threads have their own).
 * The data-plane thread runs above the host's ordinary work so it is not
 * starved by the traffic it forwards; needs CAP_SYS_NICE. Returns false when
 * refused, never throws.
 */
export function setThreadNice(nice: number): boolean {
  const lc = libc();
  return lc.setpriority(PRIO_PROCESS, lc.gettid(), nice) === 0;
}

/** madvise(2) advice: back the range with transparent huge pages. */
const MADV_HUGEPAGE = 14;
const HUGE_PAGE = 2 << 20;

/**
 * Asks the kernel to back the 2 MiB-aligned part of `buf` with transparent
 * huge pages (`MADV_HUGEPAGE`; THP in "madvise" mode needs it), before its
 * pages are first touched: a large random-access table then misses the TLB
 * far less. Returns false when the kernel refuses or the buffer is smaller
 * than one huge page; nothing else changes.
 */
export function adviseHugePages(buf: SharedArrayBuffer | ArrayBuffer): boolean {
  if (buf.byteLength < 2 * HUGE_PAGE) return false;
  const at = addressOf(new Uint8Array(buf));
  const start = Math.ceil(at / HUGE_PAGE) * HUGE_PAGE;
  const end = Math.floor((at + buf.byteLength) / HUGE_PAGE) * HUGE_PAGE;
  return end > start && libc().madvise(BigInt(start), BigInt(end - start), MADV_HUGEPAGE) === 0;
}
