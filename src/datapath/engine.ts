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
  /** Processes the packet in place; true to send it on. Never throws. */
  process(buf: Uint8Array, off: number, len: number, csumPartial: number, nowMs: number): boolean;
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
  /** Yield to the event loop at least this often, in ms. */
  yieldMs?: number;
  /** Int32Array whose slot 0 the control plane bumps when it posts a message. */
  control?: Int32Array;
}

const yieldToEventLoop = () => new Promise<void>((r) => setTimeout(r, 0));

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
    const { waitMs = 20, tickMs = 100, yieldMs = 50, control } = this.opts;
    this.#running = true;
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
      if (!this.proc.process(b.bufs[i], b.offset, b.sizes[i], b.meta.csumPartial[i], nowMs)) {
        continue;
      }
      b.out[out] = b.bufs[i];
      b.outSizes[out] = b.sizes[i];
      b.outMeta.csumPartial[out] = b.meta.csumPartial[i];
      out++;
    }
    if (out > 0) {
      const w = this.dev.write(b.out, b.outSizes, b.outMeta, b.offset, out);
      if (w < out) this.proc.countWriteError(out - w);
    }
    return n;
  }
}
