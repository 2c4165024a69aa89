/**
 * Carves the typed-array columns of a table out of one `SharedArrayBuffer`,
 * so that another Worker can map the same columns at the same offsets. The
 * same sequence of calls must be made on every side: `Arena.measure` runs the
 * sequence once to learn the size, `Arena.over` hands out the views.
 */

/** Columns start on a cache line, so no two columns share one. */
const ALIGN = 64;

/** A bump allocator of typed-array views over one buffer (or a dry run that only counts bytes). */
export class Arena {
  readonly #buffer: SharedArrayBuffer | null;
  #offset = 0;
  /** True when the buffer is new: the caller fills initial values; false when mapping an existing table. */
  readonly fresh: boolean;

  private constructor(buffer: SharedArrayBuffer | null, fresh: boolean) {
    this.#buffer = buffer;
    this.fresh = fresh;
  }

  /** A dry run: views are empty, `byteLength` says how large the buffer must be. */
  static measure(): Arena {
    return new Arena(null, true);
  }

  /** Views over `buffer`; `fresh` when the caller must initialise them. */
  static over(buffer: SharedArrayBuffer, fresh: boolean): Arena {
    return new Arena(buffer, fresh);
  }

  /** Bytes handed out so far (cache-line aligned). */
  get byteLength(): number {
    return this.#offset;
  }

  #take(bytes: number): number {
    const at = this.#offset;
    this.#offset = Math.ceil((at + bytes) / ALIGN) * ALIGN;
    if (this.#buffer !== null && this.#offset > this.#buffer.byteLength) {
      throw new RangeError(
        `Cannot map table: buffer of ${this.#buffer.byteLength} bytes, layout needs ${this.#offset}`,
      );
    }
    return at;
  }

  i32(n: number): Int32Array {
    const at = this.#take(4 * n);
    return this.#buffer === null ? new Int32Array(0) : new Int32Array(this.#buffer, at, n);
  }
  u32(n: number): Uint32Array {
    const at = this.#take(4 * n);
    return this.#buffer === null ? new Uint32Array(0) : new Uint32Array(this.#buffer, at, n);
  }
  u16(n: number): Uint16Array {
    const at = this.#take(2 * n);
    return this.#buffer === null ? new Uint16Array(0) : new Uint16Array(this.#buffer, at, n);
  }
  u8(n: number): Uint8Array {
    const at = this.#take(n);
    return this.#buffer === null ? new Uint8Array(0) : new Uint8Array(this.#buffer, at, n);
  }
  f64(n: number): Float64Array {
    const at = this.#take(8 * n);
    return this.#buffer === null ? new Float64Array(0) : new Float64Array(this.#buffer, at, n);
  }
}
