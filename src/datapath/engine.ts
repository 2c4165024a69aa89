/**
 * The run loop: wait for the device, read a batch, run each packet through
 * the pipeline, write back what passes; between batches, housekeeping and a
 * short yield to the event loop when the control plane has sent a message.
 * Everything per packet is synchronous (see the lab notes: an awaited FFI
 * call per packet costs 32 us).
 */
import type { Device } from "../device/device.ts";
import { PacketBatch } from "./batch.ts";

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
  /** Int32Array whose slot 0 the control plane bumps when it posts a message. */
  control?: Int32Array;
}

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

  /** Binds the loop to `dev` and `proc`. */
  constructor(
    readonly dev: Device,
    readonly proc: PacketProcessor,
    readonly opts: EngineOptions = {},
  ) {
    this.#batch = new PacketBatch(dev, opts.batch ?? 64);
  }

  /** Runs until `stop()`. */
  async run(): Promise<void> {
    this.#running = true;
    const yielder = makeYielder();
    try {
      await this.#loop(yielder.yield);
    } finally {
      yielder.close();
    }
  }

  async #loop(yieldToEventLoop: () => Promise<void>): Promise<void> {
    const { waitMs = 20, tickMs = 100, yieldMs = 1000, control } = this.opts;
    let nextTick = 0, nextYield = 0;
    while (this.#running) {
      if (this.dev.wait(waitMs)) this.pump(Date.now());
      const now = Date.now();
      if (now >= nextTick) {
        await this.proc.housekeeping(now);
        nextTick = now + tickMs;
      }
      if ((control && Atomics.exchange(control, 0, 0) > 0) || now >= nextYield) {
        await yieldToEventLoop();
        nextYield = Date.now() + yieldMs;
      }
    }
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
