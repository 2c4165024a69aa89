/**
 * A doorbell between Workers over eventfd(2): a Worker that sleeps in poll(2)
 * (on its TUN queue and this fd, see {@linkcode TunQueue.setDoorbell}) wakes
 * when another Worker rings.
 *
 * The fd is a kernel counter: `ring` adds 1 with an 8-byte write, `drain`
 * reads it back to 0 with an 8-byte read, and poll reports it readable while
 * it is above 0. Rings before the sleeper polls are not lost (the counter
 * keeps them), and any number of rings wake one poll once. Both calls are
 * non-blocking (`EFD_NONBLOCK`): a ring fails with EAGAIN only when the
 * counter would pass 2^64 - 2, and a drain of an unrung bell returns EAGAIN;
 * neither matters, so both ignore errors and never throw.
 *
 * Workers are threads of one process and share its fd table: a Worker maps
 * the same bell with {@linkcode Doorbell.fromFd} on the number the opener
 * posts to it. That copy does not own the fd: only the opener's `close`
 * closes it, after every Worker using it has stopped (a closed fd number is
 * soon reused by the next open).
 */

import {
  addressOf,
  closeFd,
  EFD_CLOEXEC,
  EFD_NONBLOCK,
  IoVecs,
  openEventFd,
  poll,
  POLLIN,
  readv,
  writev,
} from "./libc.ts";

/** An eventfd(2) a Worker rings to wake another one sleeping in poll(2). */
export class Doorbell {
  /** The eventfd, to poll on (and to post to the Workers that map it). */
  readonly fd: number;
  #owned: boolean;
  #closed = false;
  // One 8-byte counter value each way; the iovecs point at them once.
  #one = new Uint8Array(8);
  #sink = new Uint8Array(8);
  #ringIov = new IoVecs(1);
  #drainIov = new IoVecs(1);
  #pollfd = new Uint8Array(8);

  private constructor(fd: number, owned: boolean) {
    this.fd = fd;
    this.#owned = owned;
    this.#one[0] = 1; // little-endian u64 1
    this.#ringIov.set(0, addressOf(this.#one), 8);
    this.#drainIov.set(0, addressOf(this.#sink), 8);
    const pfd = new DataView(this.#pollfd.buffer);
    pfd.setInt32(0, fd, true);
    pfd.setInt16(4, POLLIN, true);
  }

  /** Creates a new bell (`EFD_NONBLOCK | EFD_CLOEXEC`); throws an `ErrnoError` when refused. */
  static open(): Doorbell {
    return new Doorbell(openEventFd(EFD_NONBLOCK | EFD_CLOEXEC), true);
  }

  /**
   * Maps a bell another Worker of this process opened (its `fd`). The copy
   * does not own the fd: its `close` only stops it from ringing.
   */
  static fromFd(fd: number): Doorbell {
    if (!Number.isInteger(fd) || fd < 0) {
      throw new RangeError(`Cannot map doorbell fd ${fd}: not a file descriptor`);
    }
    return new Doorbell(fd, false);
  }

  /** Wakes the sleeper (or its next poll). One write(2); never throws, errors ignored. */
  ring(): void {
    if (!this.#closed) writev(this.fd, this.#ringIov.bytes, 1);
  }

  /** Resets the bell so the next poll sleeps. One read(2); never throws. */
  drain(): void {
    if (!this.#closed) readv(this.fd, this.#drainIov.bytes, 1);
  }

  /**
   * Blocks in poll(2) up to `timeoutMs` for a ring (for a Worker with no
   * queue to wait on); true when rung, and then drained.
   */
  wait(timeoutMs: number): boolean {
    if (this.#closed || poll(this.#pollfd, 1n, timeoutMs) <= 0) return false;
    this.drain();
    return true;
  }

  /** Stops this copy; the opener's copy also closes the fd. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#owned) closeFd(this.fd);
  }
}
