/**
 * The handoff ring: how a tracker Worker hands worker 0 (the admission
 * Worker) what it may not decide itself.
 *
 * One data-plane Worker runs per TUN queue (`IFF_MULTI_QUEUE`). Worker 0
 * alone runs the knock verifier, the unlock table and the rule lookup and
 * creates, expires and frees flows; Workers 1..n-1 (trackers) run the fast
 * path for packets whose tuple is in the shared flow table. Everything else
 * (a lookup miss, a SYN reopening a finished flow, an unlock refresh of a
 * gated flow) a tracker pushes into its own ring to worker 0, which decides
 * and writes the packet out. Knocks of one source land on different queues
 * (each knock port is another 4-tuple), so they must meet in one Worker to
 * be verified in order; clients pace knocks >= 20 ms apart
 * (docs/knock-protocol.md), far above a ring's latency.
 *
 * Worker 0 should write a handed-off packet through the tracker's queue fd,
 * not its own: the kernel steers a flow's later packets, both directions, to
 * the queue it was last written on (src/device/tun.ts), so writing each new
 * flow's first packet on queue 0 would pull every flow to worker 0. Written
 * through the tracker's queue, the reply (the written packet's inverse, the
 * same symmetric hash) comes back to that tracker, and so do the original
 * direction's packets once the tracker has written the reply: both
 * directions of a flow settle on one Worker while the kernel's steering
 * table (4096 flows, 3 s) holds it. IPv6 goes the other way (`Engine`):
 * only worker 0 judges it, so worker 0 writes it through its own queue and
 * the flow settles there.
 *
 * A ring is single-producer single-consumer over one SharedArrayBuffer:
 * - Control words, each side's on its own cache line: `head` and the
 *   producer's counters (written by the tracker), `tail`, `sleeping` and the
 *   consumer's counters (written by worker 0), then the read-only layout
 *   (capacity, headroom). Positions are free-running 32-bit byte counts; the
 *   data offset is the position modulo the capacity (a power of two).
 * - Records are 8-byte aligned: a 16-byte header (u16 packet length, u8
 *   kind, u8 checksum state, u32 argument, u32 value, u32 zero), then the
 *   `headroom` bytes in front of the packet (the virtio-net header its read
 *   left there: worker 0 must write a partial or GSO packet behind it), then
 *   the packet. A record without a packet (length 0) carries no bytes. A
 *   record that does not fit before the end is preceded by a skip record
 *   filling the rest, and starts at offset 0.
 * - Publication: the producer writes a record with plain stores and then
 *   stores `head` with `Atomics.store`; the consumer loads `head` with
 *   `Atomics.load` before reading the record, and stores `tail` after
 *   copying it out, which frees the bytes. Sequentially consistent atomics
 *   order the plain accesses around them (the JS memory model's
 *   synchronizes-with). Each side caches the other's position and loads it
 *   again only when its cached view says full (producer) or empty
 *   (consumer).
 * - Sleep without a lost wakeup (the Dekker pattern): the consumer stores
 *   `sleeping = 1`, then loads `head`; it sleeps (in poll on its queue and
 *   the doorbell) only if that shows nothing waiting. The producer's `flush`
 *   loads `sleeping` after its last `head` store and rings the doorbell when
 *   it is set. In the total order of these seq-cst accesses either the
 *   consumer sees the new head or the producer sees `sleeping = 1`. The
 *   producer clears `sleeping` with a compare-exchange as it rings, so a
 *   burst of flushes rings once per sleep.
 *
 * How the Workers use it (the setup posts each tracker its ring's buffer and
 * the doorbell's fd, and worker 0 every ring and the trackers' queue fds):
 * ```ts
 * // tracker k, per read batch: the fast path, else
 * if (!ring.push(HANDOFF_PACKET, 0, meta.csum[i], bufs[i], OFF, sizes[i])) drops.handoffFull++;
 * ring.flush(bell); // after the batch: wakes worker 0 if it sleeps
 * // worker 0, its loop: pop every ring, write through queue k; when idle
 * if (sleepAll(rings)) {
 *   queue.wait(timeoutMs); // its own TUN queue with setDoorbell(bell)
 *   wakeAll(rings);
 * }
 * ```
 *
 * The per-packet calls (`push`, `pop`) never allocate, throw or make a
 * syscall; `flush` makes one (a doorbell write) only when the consumer
 * sleeps. Small records are copied by 32-bit words on the ring's side (a
 * SharedArrayBuffer's `TypedArray.set` is a relaxed-atomic copy, no faster,
 * and `subarray` allocates), large ones by libc memcpy through FFI (a fixed
 * ~0.2 us against ~0.5 ns a byte: 64 KiB in ~2 us instead of ~40 us).
 */

import { bufferAddress, copyBytes, type Doorbell } from "../device/mod.ts";

/** A packet for the full slow path (a lookup miss, a later fragment, an ICMP error). */
export const HANDOFF_PACKET = 1;
/**
 * A SYN on a finished flow that worker 0 must judge (reopen or drop); `arg`
 * is the flow id and `value` its generation at lookup (the flow may be freed
 * before worker 0 pops it).
 */
export const HANDOFF_REOPEN = 2;
/**
 * An unlock refresh of a gated flow, at most once a second per flow, without
 * packet bytes: `arg` is the source IPv4 address (host order) and `value` the
 * bytes seen since the last refresh (saturating at 2^32 - 1).
 */
export const HANDOFF_TOUCH = 3;

/** Largest packet a record carries (an IPv4 packet, GSO super packets included). */
export const HANDOFF_MAX_PACKET = 65535;
/** A capacity that holds a dozen GSO super packets or thousands of small ones. */
export const HANDOFF_DEFAULT_CAPACITY = 1 << 20;

const KIND_SKIP = 0xff;
const NO_BYTES = new Uint8Array(0);
const RECORD_HEADER = 16;
const MIN_CAPACITY = 1024;
const MAX_CAPACITY = 1 << 28;
const MAGIC = 0x4b474852; // "KGHR"
/** Bytes from which a copy goes through memcpy (FFI) rather than a JS loop. */
const FFI_COPY_BYTES = 512;
/** Records `pop` may pass over (skip or unfit) before it gives up for this call. */
const POP_PASSES = 64;

// Control area, as Int32 indexes (cache lines of 64 bytes) and Float64 indexes.
const HEAD = 0; // line 0: the producer's
const F_PUSHED = 1;
const F_DROPPED = 2;
const F_RINGS = 3;
const TAIL = 16; // line 1: the consumer's
const SLEEPING = 17;
const F_POPPED = 9;
const F_UNFIT = 10;
const I_MAGIC = 32; // line 2: written once
const I_CAPACITY = 33;
const I_HEADROOM = 34;
const DATA = 192;

/** Counters of one ring, from the shared buffer (either side, or a third Worker, may read them). */
export interface HandoffStats {
  /** Records pushed. */
  pushed: number;
  /** Records refused by `push`: the ring was full, or the record was malformed or too large. */
  dropped: number;
  /** Doorbell rings by `flush` (consumer asleep). */
  rings: number;
  /** Records popped. */
  popped: number;
  /** Records `pop` discarded because the destination could not hold them (a caller's bug). */
  unfit: number;
  /** Bytes in the ring now (records and skips not yet popped). */
  used: number;
  /** The ring's data capacity in bytes. */
  capacity: number;
}

/** A power of two at least `n` and at least the minimum capacity. */
function roundCapacity(n: number): number {
  let c = MIN_CAPACITY;
  while (c < n) c *= 2;
  return c;
}

/** A single-producer single-consumer ring of packet records over a SharedArrayBuffer. */
export class HandoffRing {
  /** The shared buffer; post it to the other side. */
  readonly buffer: SharedArrayBuffer;
  /** The ring's data capacity in bytes (a power of two). */
  readonly capacity: number;
  /** Bytes copied in front of every packet (the device's headroom). */
  readonly headroom: number;
  #ctl: Int32Array;
  #f64: Float64Array;
  #data: Uint8Array;
  #words: Int32Array;
  #mask: number;
  // The producer's view.
  #head: number;
  #tailSeen: number;
  #unflushed = false;
  // The consumer's view.
  #tail: number;
  #headSeen: number;
  #dataAddr = -1; // the data region's address, taken at the first large copy
  #kind = 0;
  #csum = 0;
  #arg = 0;
  #value = 0;

  /** The buffer size for a ring of `capacityBytes` (rounded up to a power of two, at least 1 KiB). */
  static bufferBytes(capacityBytes: number): number {
    return DATA + roundCapacity(capacityBytes);
  }

  /**
   * A new shared buffer laid out for a ring of `capacityBytes` (rounded as
   * in `bufferBytes`, at most 256 MiB) that copies `headroom` bytes (0..64)
   * in front of each packet. Both sides construct a `HandoffRing` on it.
   */
  static allocate(capacityBytes = HANDOFF_DEFAULT_CAPACITY, headroom = 0): SharedArrayBuffer {
    const cap = roundCapacity(capacityBytes);
    if (cap > MAX_CAPACITY) {
      throw new RangeError(
        `Cannot allocate a handoff ring of ${capacityBytes} bytes: at most 2^28`,
      );
    }
    if (!Number.isInteger(headroom) || headroom < 0 || headroom > 64) {
      throw new RangeError(`Cannot allocate a handoff ring: headroom ${headroom} is not 0..64`);
    }
    const buffer = new SharedArrayBuffer(DATA + cap);
    const ctl = new Int32Array(buffer);
    ctl[I_CAPACITY] = cap;
    ctl[I_HEADROOM] = headroom;
    ctl[I_MAGIC] = MAGIC;
    return buffer;
  }

  /** Maps a ring made by `allocate` (either side; each side uses only its own calls). */
  constructor(buffer: SharedArrayBuffer) {
    const ctl = new Int32Array(buffer, 0, DATA / 4);
    const cap = ctl[I_CAPACITY];
    if (ctl[I_MAGIC] !== MAGIC || buffer.byteLength !== DATA + cap) {
      throw new RangeError("Cannot map the handoff ring: the buffer was not made by allocate()");
    }
    this.buffer = buffer;
    this.capacity = cap;
    this.headroom = ctl[I_HEADROOM];
    this.#ctl = ctl;
    this.#f64 = new Float64Array(buffer, 0, DATA / 8);
    this.#data = new Uint8Array(buffer, DATA, cap);
    this.#words = new Int32Array(buffer, DATA, cap / 4);
    this.#mask = cap - 1;
    this.#head = this.#headSeen = Atomics.load(ctl, HEAD);
    this.#tail = this.#tailSeen = Atomics.load(ctl, TAIL);
  }

  // ---- producer (a tracker Worker) ----

  /**
   * Copies packet `pkt[off..off+len)` (and the `headroom` bytes before it)
   * into a record of `kind` (1..254) with `arg`, `value` and checksum state
   * `csum`; `len` 0 makes a record without bytes. False, and counted as
   * dropped, when the ring is full or the record malformed; never throws.
   */
  push(
    kind: number,
    arg: number,
    csum: number,
    pkt: Uint8Array,
    off: number,
    len: number,
    value = 0,
  ): boolean {
    const f = this.#f64;
    const hr = len > 0 ? this.headroom : 0;
    const size = (RECORD_HEADER + hr + len + 7) & ~7;
    if (
      !(kind >= 1 && kind < KIND_SKIP) || !(len >= 0 && len <= HANDOFF_MAX_PACKET) ||
      off - hr < 0 || off + len > pkt.length || size > this.capacity
    ) {
      f[F_DROPPED]++;
      return false;
    }
    const cap = this.capacity;
    let head = this.#head;
    let at = head & this.#mask;
    const room = cap - at; // contiguous bytes before the end
    if (size > room) {
      // Fill the end with a skip record (it needs only its first word), then start at 0.
      if (!this.#hasRoom(room)) {
        f[F_DROPPED]++;
        return false;
      }
      this.#words[at >> 2] = KIND_SKIP << 16;
      head = (head + room) | 0;
      this.#head = head;
      Atomics.store(this.#ctl, HEAD, head);
      at = 0;
    }
    if (!this.#hasRoom(size)) {
      f[F_DROPPED]++;
      return false;
    }
    const w = this.#words, i = at >> 2;
    w[i] = len | (kind << 16) | ((csum & 0xff) << 24);
    w[i + 1] = arg | 0;
    w[i + 2] = value > 0xffffffff ? -1 : value | 0;
    w[i + 3] = 0;
    const n = hr + len;
    if (n >= FFI_COPY_BYTES) {
      copyBytes(this.#dataAt(at + RECORD_HEADER), bufferAddress(pkt) + off - hr, n);
    } else if (n > 0) copyIn(pkt, off - hr, w, i + 4, this.#data, at + RECORD_HEADER, n);
    head = (head + size) | 0;
    this.#head = head;
    Atomics.store(this.#ctl, HEAD, head);
    f[F_PUSHED]++;
    this.#unflushed = true;
    return true;
  }

  /** `push` of a record without packet bytes (a `HANDOFF_TOUCH`). */
  note(kind: number, arg: number, value: number): boolean {
    return this.push(kind, arg, 0, NO_BYTES, 0, 0, value);
  }

  /**
   * Ends a batch of pushes: rings `bell` once if records were pushed since
   * the last flush and the consumer sleeps (see the module comment). One
   * syscall at most; never throws.
   */
  flush(bell: Doorbell | null): void {
    if (!this.#unflushed) return;
    this.#unflushed = false;
    const ctl = this.#ctl;
    if (Atomics.load(ctl, SLEEPING) !== 1) return;
    if (Atomics.compareExchange(ctl, SLEEPING, 1, 0) !== 1) return;
    this.#f64[F_RINGS]++;
    if (bell !== null) bell.ring();
  }

  /** True when `bytes` are free, looking at the consumer's tail again only if the cached one says no. */
  #hasRoom(bytes: number): boolean {
    if (this.capacity - ((this.#head - this.#tailSeen) | 0) >= bytes) return true;
    this.#tailSeen = Atomics.load(this.#ctl, TAIL);
    return this.capacity - ((this.#head - this.#tailSeen) | 0) >= bytes;
  }

  // ---- consumer (worker 0) ----

  /**
   * Copies the oldest record's packet to `dst[dstOff..)` (its headroom bytes
   * to `dst[dstOff-headroom..dstOff)`) and frees it. Returns the packet's
   * length (0 for a record without bytes), then `kind`, `arg`, `value` and
   * `csum` describe it; -1 when the ring is empty. A record `dst` cannot
   * hold is discarded and counted (`unfit`). Never throws.
   */
  pop(dst: Uint8Array, dstOff: number): number {
    const w = this.#words, cap = this.capacity;
    for (let pass = 0; pass < POP_PASSES; pass++) {
      let tail = this.#tail;
      if (tail === this.#headSeen) {
        this.#headSeen = Atomics.load(this.#ctl, HEAD);
        if (tail === this.#headSeen) return -1;
      }
      const at = tail & this.#mask, i = at >> 2;
      const w0 = w[i];
      const kind = (w0 >>> 16) & 0xff;
      if (kind === KIND_SKIP) {
        this.#advance((tail + cap - at) | 0);
        continue;
      }
      const len = w0 & 0xffff;
      const hr = len > 0 ? this.headroom : 0;
      tail = (tail + ((RECORD_HEADER + hr + len + 7) & ~7)) | 0;
      if (dstOff - hr < 0 || dstOff + len > dst.length) {
        this.#f64[F_UNFIT]++;
        this.#advance(tail);
        continue;
      }
      const n = hr + len;
      if (n >= FFI_COPY_BYTES) {
        copyBytes(bufferAddress(dst) + dstOff - hr, this.#dataAt(at + RECORD_HEADER), n);
      } else if (n > 0) copyOut(w, i + 4, this.#data, at + RECORD_HEADER, dst, dstOff - hr, n);
      this.#kind = kind;
      this.#csum = w0 >>> 24;
      this.#arg = w[i + 1] >>> 0;
      this.#value = w[i + 2] >>> 0;
      this.#advance(tail);
      this.#f64[F_POPPED]++;
      return len;
    }
    return -1;
  }

  /** The kind of the record `pop` returned last. */
  get kind(): number {
    return this.#kind;
  }
  /** Its argument (u32). */
  get arg(): number {
    return this.#arg;
  }
  /** Its value (u32). */
  get value(): number {
    return this.#value;
  }
  /** Its packet's checksum state (`CSUM_NONE`, `CSUM_PARTIAL`, `CSUM_VALID`). */
  get csum(): number {
    return this.#csum;
  }

  /**
   * Marks the consumer asleep before it blocks; false (and it stays awake)
   * when records are waiting. Call `wake` after the poll returns.
   */
  sleep(): boolean {
    const ctl = this.#ctl;
    Atomics.store(ctl, SLEEPING, 1);
    if (Atomics.load(ctl, HEAD) === this.#tail) return true;
    Atomics.store(ctl, SLEEPING, 0);
    return false;
  }

  /** Marks the consumer awake (producers stop ringing). */
  wake(): void {
    Atomics.store(this.#ctl, SLEEPING, 0);
  }

  /** The address of data byte `at`. */
  #dataAt(at: number): number {
    if (this.#dataAddr < 0) this.#dataAddr = bufferAddress(this.#data);
    return this.#dataAddr + at;
  }

  #advance(tail: number): void {
    this.#tail = tail;
    Atomics.store(this.#ctl, TAIL, tail);
  }

  /** The ring's counters (a snapshot; allocates: not for the hot path). */
  stats(): HandoffStats {
    const f = this.#f64, ctl = this.#ctl;
    return {
      pushed: f[F_PUSHED],
      dropped: f[F_DROPPED],
      rings: f[F_RINGS],
      popped: f[F_POPPED],
      unfit: f[F_UNFIT],
      used: (Atomics.load(ctl, HEAD) - Atomics.load(ctl, TAIL)) | 0,
      capacity: this.capacity,
    };
  }
}

/**
 * Marks the consumer of every ring asleep; false (every ring awake again)
 * when one has records waiting. Worker 0 calls it before it polls.
 */
export function sleepAll(rings: readonly HandoffRing[]): boolean {
  for (let i = 0; i < rings.length; i++) {
    if (!rings[i].sleep()) {
      for (let j = 0; j < i; j++) rings[j].wake();
      return false;
    }
  }
  return true;
}

/** Marks the consumer of every ring awake (after its poll returned). */
export function wakeAll(rings: readonly HandoffRing[]): void {
  for (let i = 0; i < rings.length; i++) rings[i].wake();
}

/** Copies `n` bytes of `src` from `from` into the ring at word `wi` (byte `at` of `data`). */
function copyIn(
  src: Uint8Array,
  from: number,
  w: Int32Array,
  wi: number,
  data: Uint8Array,
  at: number,
  n: number,
): void {
  const words = n >> 2;
  let s = from;
  for (let k = 0; k < words; k++, s += 4) {
    w[wi + k] = src[s] | (src[s + 1] << 8) | (src[s + 2] << 16) | (src[s + 3] << 24);
  }
  for (let k = words << 2; k < n; k++) data[at + k] = src[from + k];
}

/** Copies `n` bytes from the ring at word `wi` (byte `at` of `data`) into `dst` from `to`. */
function copyOut(
  w: Int32Array,
  wi: number,
  data: Uint8Array,
  at: number,
  dst: Uint8Array,
  to: number,
  n: number,
): void {
  const words = n >> 2;
  let d = to;
  for (let k = 0; k < words; k++, d += 4) {
    const x = w[wi + k];
    dst[d] = x;
    dst[d + 1] = x >>> 8;
    dst[d + 2] = x >>> 16;
    dst[d + 3] = x >>> 24;
  }
  for (let k = words << 2; k < n; k++) dst[to + k] = data[at + k];
}
