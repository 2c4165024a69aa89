/**
 * The run loop: wait for the device, read a batch, run each packet through
 * the pipeline, write back what passes; between batches, housekeeping and a
 * short yield to the event loop when the control plane has sent a message.
 * Everything per packet is synchronous (see the lab notes: an awaited FFI
 * call per packet costs 32 us).
 */
import type { Device, PacketMeta } from "../device/device.ts";
import type { Doorbell } from "../device/mod.ts";
import { PacketBatch } from "./batch.ts";
import { type HandoffRing, sleepAll, wakeAll } from "./handoff.ts";

/** What the loop drives: one call per packet, one per housekeeping tick. */
export interface PacketProcessor {
  /**
   * Processes the packet in place; true to send it on. Never throws. `csum`
   * is its L4 checksum state (`CSUM_*` of src/device).
   */
  process(buf: Uint8Array, off: number, len: number, csum: number, nowMs: number): boolean;
  /** Periodic work (expiry, sweeps); may be async (sequence refresh). */
  housekeeping(nowMs: number): void | Promise<void>;
  /** Counts a packet the device refused to take. */
  countWriteError(n: number): void;
  /** A record of a tracker's handoff ring (worker 0 only; see `Pipeline.processHandoff`). */
  processHandoff?(
    kind: number,
    arg: number,
    value: number,
    buf: Uint8Array,
    off: number,
    len: number,
    csum: number,
    nowMs: number,
  ): boolean;
  /** Called before every read batch (and after every wait): the processor holds no flow handle now. */
  quiescent?(): void;
  /** Called before the loop blocks on the device. */
  offline?(): void;
  /** Called after each loop turn that read packets: hands on what must not wait for the tick. */
  afterBatch?(): void;
}

/** Options of the run loop. */
export interface EngineOptions {
  /** Packets per read batch. */
  batch?: number;
  /** Longest blocking wait for the device, in ms (bounds housekeeping latency). */
  waitMs?: number;
  /** Housekeeping period in ms. */
  tickMs?: number;
  /** Yield to the event loop at least this often, in ms (a backstop: messages from the control plane make the loop yield at once). */
  yieldMs?: number;
  /**
   * Messages from the control plane: slot 0 counts those posted (the control
   * plane adds 1 after each postMessage), slot 1 those handled (the Worker's
   * onmessage adds 1). While they differ the loop yields, a few times a turn.
   */
  control?: Int32Array;
  /**
   * Worker 0: the trackers' handoff rings it drains (its device's wait also
   * watches their doorbell), each with the tracker's queue: a handed-off
   * packet goes out there, so the kernel steers the flow's later packets,
   * both directions, back to that tracker (see handoff.ts).
   */
  handoffIn?: { ring: HandoffRing; writer: Device }[];
  // IPv6 is the exception: only worker 0 judges it, so a handed-off IPv6 packet goes out through
  // worker 0's own queue and the kernel's steering brings the flow to queue 0 (else every packet
  // of an IPv6 flow the kernel put on a tracker's queue would be handed off for its whole life).
  /** A tracker: the ring its processor hands packets into, and worker 0's doorbell to ring. */
  handoffOut?: { ring: HandoffRing; doorbell: Doorbell };
}

/**
 * Yields a turn may spend waiting for posted messages to arrive: one yield
 * does not always deliver a host message (it can still be in flight to the
 * Worker's port), and the packets must not wait on the control plane long.
 */
const MESSAGE_YIELDS_PER_TURN = 4;

/** Batches taken from one handoff ring per loop turn at most (the device's own queue waits meanwhile). */
const HANDOFF_BATCHES_PER_TURN = 4;

/**
 * Yields to the event loop for one macrotask. A MessageChannel round trip lets
 * queued messages run in ~0.2 ms; a Worker's setTimeout(0) takes ~3 ms (timer
 * clamping), long enough for the TUN queue to fill at small-packet rates.
 */
function makeYielder(): { yield: () => Promise<void>; close: () => void } {
  const ch = new MessageChannel();
  let wake = () => {};
  ch.port2.onmessage = () => wake();
  return {
    yield: () =>
      new Promise<void>((r) => {
        wake = r;
        ch.port1.postMessage(0);
      }),
    close: () => {
      ch.port1.close();
      ch.port2.close();
    },
  };
}

/** The data-plane loop over one device; `stop()` ends `run()` within `waitMs`. */
export class Engine {
  #running = false;
  readonly #batch: PacketBatch;
  readonly #rings: HandoffRing[];
  /** Worker 0: the handed-off IPv6 packets of one batch, written through its own queue. */
  readonly #out6: { out: Uint8Array[]; outSizes: Int32Array; outMeta: PacketMeta };

  /** Binds the loop to `dev` and `proc`. */
  constructor(
    readonly dev: Device,
    readonly proc: PacketProcessor,
    readonly opts: EngineOptions = {},
  ) {
    this.#batch = new PacketBatch(dev, opts.batch ?? 64);
    this.#rings = (opts.handoffIn ?? []).map((x) => x.ring);
    const n = this.#batch.bufs.length;
    this.#out6 = {
      out: new Array<Uint8Array>(n),
      outSizes: new Int32Array(n),
      outMeta: { csum: new Uint8Array(n) },
    };
  }

  /** Runs until `stop()`. */
  async run(): Promise<void> {
    this.#running = true;
    const yielder = makeYielder();
    try {
      await this.#loop(yielder.yield);
    } finally {
      yielder.close();
      this.proc.offline?.(); // a stopped Worker holds no flow handle: it must not hold back reuse
    }
  }

  async #loop(yieldToEventLoop: () => Promise<void>): Promise<void> {
    const { waitMs = 20, tickMs = 100, yieldMs = 1000, control } = this.opts;
    let nextTick = 0, nextYield = 0;
    const out = this.opts.handoffOut;
    while (this.#running) {
      const ready = this.#wait(waitMs);
      // Online again before the batch takes any flow handle (the table's grace period).
      this.proc.quiescent?.();
      if (ready) {
        const t = Date.now();
        this.pump(t);
        this.#drainHandoffs(t);
        this.proc.afterBatch?.();
      }
      out?.ring.flush(out.doorbell);
      const now = Date.now();
      if (now >= nextTick) {
        await this.proc.housekeeping(now);
        nextTick = now + tickMs;
      }
      if (control && Atomics.load(control, 0) !== Atomics.load(control, 1)) {
        for (let k = 0; k < MESSAGE_YIELDS_PER_TURN; k++) {
          await yieldToEventLoop();
          if (Atomics.load(control, 0) === Atomics.load(control, 1)) break;
        }
        nextYield = Date.now() + yieldMs;
      } else if (now >= nextYield) {
        await yieldToEventLoop();
        nextYield = Date.now() + yieldMs;
      }
    }
  }

  /**
   * Blocks on the device (and the trackers' doorbell) unless a handoff ring
   * already holds records; true when there may be work.
   */
  #wait(waitMs: number): boolean {
    const rings = this.#rings;
    if (!sleepAll(rings)) return true;
    this.proc.offline?.();
    const ready = this.dev.wait(waitMs);
    wakeAll(rings);
    return ready || rings.length > 0;
  }

  /** Worker 0: processes what the trackers handed over, writing out what passes. */
  #drainHandoffs(nowMs: number): void {
    const inbound = this.opts.handoffIn;
    if (inbound === undefined) return;
    for (let k = 0; k < inbound.length; k++) {
      const { ring, writer } = inbound[k];
      for (let turn = 0; turn < HANDOFF_BATCHES_PER_TURN; turn++) {
        if (this.#drainBatch(ring, writer, nowMs) < this.#batch.bufs.length) break;
      }
    }
  }

  /** Pops up to one batch from `ring`, writing what passes through `writer`; returns the records taken. */
  #drainBatch(ring: HandoffRing, writer: Device, nowMs: number): number {
    const b = this.#batch, six = this.#out6, proc = this.proc;
    let n = 0, out = 0, out6 = 0;
    for (; n < b.bufs.length; n++) {
      const len = ring.pop(b.bufs[n], b.offset);
      if (len < 0) break;
      const pass = proc.processHandoff!(
        ring.kind,
        ring.arg,
        ring.value,
        b.bufs[n],
        b.offset,
        len,
        ring.csum,
        nowMs,
      );
      if (!pass) continue;
      if (b.bufs[n][b.offset] >>> 4 === 6) {
        six.out[out6] = b.bufs[n];
        six.outSizes[out6] = len;
        six.outMeta.csum[out6] = ring.csum;
        out6++;
        continue;
      }
      b.out[out] = b.bufs[n];
      b.outSizes[out] = len;
      b.outMeta.csum[out] = ring.csum;
      out++;
    }
    if (out > 0) {
      const w = writer.write(b.out, b.outSizes, b.outMeta, b.offset, out);
      if (w < out) proc.countWriteError(out - w);
    }
    if (out6 > 0) {
      const w = this.dev.write(six.out, six.outSizes, six.outMeta, b.offset, out6);
      if (w < out6) proc.countWriteError(out6 - w);
    }
    return n;
  }

  /** Stops the loop. */
  stop(): void {
    this.#running = false;
  }

  /** Reads one batch, processes it and writes what passes; returns packets read. */
  pump(nowMs: number): number {
    const b = this.#batch;
    const n = this.dev.read(b.bufs, b.sizes, b.meta, b.offset);
    let out = 0;
    for (let i = 0; i < n; i++) {
      if (!this.proc.process(b.bufs[i], b.offset, b.sizes[i], b.meta.csum[i], nowMs)) continue;
      b.out[out] = b.bufs[i];
      b.outSizes[out] = b.sizes[i];
      b.outMeta.csum[out] = b.meta.csum[i];
      out++;
    }
    if (out > 0) {
      const w = this.dev.write(b.out, b.outSizes, b.outMeta, b.offset, out);
      if (w < out) this.proc.countWriteError(out - w);
    }
    return n;
  }
}
