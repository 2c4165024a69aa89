/**
 * A hashed timer wheel with one-second slots over integer ids, intrusive
 * (doubly linked lists in typed arrays, no allocation) and lazy: pushing an
 * expiry later leaves the entry where it is; when its slot comes round the
 * wheel compares the real expiry and re-inserts it if it moved. Expiries
 * farther than one revolution simply stay in their slot for later rounds.
 * An id whose `doomed` byte has the doom bit set is due when its slot comes
 * round whatever its expiry says (a killed flow whose expiry another Worker
 * pushed later in a race with the kill).
 */

const UNLINKED = -2;

/**
 * The wheel's arrays, when they live elsewhere (a shared table: see arena.ts):
 * `heads` has one word per slot, the others one per id. `fresh` when the
 * wheel must initialise them; false when it maps arrays another wheel set up.
 */
export interface WheelColumns {
  heads: Int32Array;
  next: Int32Array;
  prev: Int32Array;
  at: Uint32Array;
  fresh: boolean;
  /** Per id: due at its slot whatever its expiry when `doomed[id] & doomBit` (optional). */
  doomed?: Uint8Array;
  doomBit?: number;
}

/** A timer wheel over ids `0..capacity-1`, reading real expiries from `expiresAt`. */
export class TimerWheel {
  readonly #heads: Int32Array;
  readonly #next: Int32Array;
  readonly #prev: Int32Array;
  readonly #at: Uint32Array;
  readonly #expiresAt: Uint32Array;
  readonly #doomed: Uint8Array;
  readonly #doomBit: number;
  readonly #mask: number;
  readonly #slots: number;
  /** Next second to process; -1 until the wheel learns the time. */
  #cursor = -1;
  /** Next entry to examine in the cursor's slot, when a slot is being processed. */
  #resume = -1;
  #inSlot = false;

  /**
   * `slots` must be a power of two. `expiresAt[id]` is the authoritative
   * expiry second of id; the wheel only reads it. Without `columns` the
   * wheel allocates its own arrays.
   */
  constructor(capacity: number, slots: number, expiresAt: Uint32Array, columns?: WheelColumns) {
    if (!Number.isInteger(slots) || slots < 2 || (slots & (slots - 1)) !== 0) {
      throw new RangeError(`Cannot create timer wheel: ${slots} slots is not a power of two`);
    }
    this.#slots = slots;
    this.#mask = slots - 1;
    const c = columns ?? {
      heads: new Int32Array(slots),
      next: new Int32Array(capacity),
      prev: new Int32Array(capacity),
      at: new Uint32Array(capacity),
      fresh: true,
    };
    this.#heads = c.heads;
    this.#next = c.next;
    this.#prev = c.prev;
    this.#at = c.at;
    if (c.fresh) {
      this.#heads.fill(-1);
      this.#next.fill(-1);
      this.#prev.fill(UNLINKED);
    }
    this.#expiresAt = expiresAt;
    this.#doomed = c.doomed ?? new Uint8Array(capacity);
    this.#doomBit = c.doomBit ?? 0;
  }

  /** Bytes held by the wheel's arrays. */
  get byteLength(): number {
    return this.#heads.byteLength + this.#next.byteLength + this.#prev.byteLength +
      this.#at.byteLength;
  }

  /** The next second the wheel will process (-1 before it first learns the time). */
  get cursor(): number {
    return this.#cursor;
  }

  /** Sets the wheel's idea of "now" if it has none yet. */
  start(nowSec: number): void {
    if (this.#cursor < 0) this.#cursor = nowSec;
  }

  /** True when `id` is scheduled. */
  isScheduled(id: number): boolean {
    return this.#prev[id] !== UNLINKED;
  }

  /** Schedules an unscheduled `id` at `expiresAt[id]`. */
  schedule(id: number): void {
    this.#link(id, this.#expiresAt[id]);
  }

  /** Call after changing `expiresAt[id]`: moves the entry only when the expiry got earlier. */
  refresh(id: number): void {
    const t = this.#expiresAt[id];
    if (t >= this.#at[id] || this.#prev[id] === UNLINKED) return;
    this.#unlink(id);
    this.#link(id, t);
  }

  /** Removes `id` from the wheel (no-op when unscheduled). */
  cancel(id: number): void {
    if (this.#prev[id] !== UNLINKED) this.#unlink(id);
  }

  /**
   * Processes slots up to `nowSec`, examining at most about `budget` entries
   * and slots. Each due id whose real expiry has passed is unscheduled and
   * handed to `onDue` (which may cancel or schedule other ids); one whose
   * expiry moved later is re-inserted. Returns the work done.
   */
  advance(nowSec: number, budget: number, onDue: (id: number) => void): number {
    this.start(nowSec);
    let work = 0;
    while (this.#cursor <= nowSec && work < budget) {
      // After a long pause one revolution visits every slot: skip the rest.
      if (!this.#inSlot && nowSec - this.#cursor >= this.#slots) {
        this.#cursor = nowSec - this.#slots + 1;
      }
      work += this.#drainSlot(nowSec, budget - work, onDue);
    }
    return work;
  }

  /** Works through the cursor's slot; advances the cursor when it finishes. */
  #drainSlot(nowSec: number, budget: number, onDue: (id: number) => void): number {
    if (!this.#inSlot) {
      this.#inSlot = true;
      this.#resume = this.#heads[this.#cursor & this.#mask];
    }
    let work = 1;
    while (this.#resume !== -1) {
      if (work >= budget) return work;
      work++;
      const id = this.#resume;
      this.#resume = this.#next[id];
      if (this.#at[id] > nowSec) continue; // a later revolution's entry
      this.#unlink(id);
      const t = this.#expiresAt[id];
      if (t <= nowSec || (this.#doomed[id] & this.#doomBit) !== 0) onDue(id);
      else this.#link(id, t);
    }
    this.#inSlot = false;
    this.#cursor++;
    return work;
  }

  #link(id: number, t: number): void {
    // Never behind the cursor: a passed slot would hold it a whole revolution.
    const min = this.#inSlot ? this.#cursor + 1 : this.#cursor;
    if (t < min) t = min;
    const slot = t & this.#mask;
    const head = this.#heads[slot];
    this.#at[id] = t;
    this.#next[id] = head;
    this.#prev[id] = -1;
    if (head !== -1) this.#prev[head] = id;
    this.#heads[slot] = id;
  }

  #unlink(id: number): void {
    const p = this.#prev[id];
    const n = this.#next[id];
    if (this.#resume === id) this.#resume = n;
    if (p === -1) this.#heads[this.#at[id] & this.#mask] = n;
    else this.#next[p] = n;
    if (n !== -1) this.#prev[n] = p;
    this.#prev[id] = UNLINKED;
    this.#next[id] = -1;
  }
}
