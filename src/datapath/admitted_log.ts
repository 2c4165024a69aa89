/**
 * The flow-admitted events of the packet path, recorded into preallocated
 * columns as the flow is created and built into event objects only when the
 * events are handed on (`Admission.flush`, after the packets were written):
 * the SYN a knock admits pays for a few stores, not for five address strings
 * and an object. Rule and user names are held by reference (the rule index's
 * and the unlock table's own strings), so recording allocates nothing.
 */
import type { FlowAdmittedEvent } from "../log/events.ts";
import { Severity } from "../log/events.ts";
import { formatIpv4 } from "../packet/mod.ts";

/** Events held between two flushes before the oldest are built early (allocating). */
export const ADMITTED_LOG_SIZE = 1024;

/** A bounded, allocation-free record of flow-admitted events in arrival order. */
export class AdmittedLog {
  readonly #time = new Float64Array(ADMITTED_LOG_SIZE);
  readonly #proto = new Uint8Array(ADMITTED_LOG_SIZE);
  readonly #src = new Uint32Array(ADMITTED_LOG_SIZE);
  readonly #dst = new Uint32Array(ADMITTED_LOG_SIZE);
  readonly #priv = new Uint32Array(ADMITTED_LOG_SIZE);
  readonly #srcPort = new Uint16Array(ADMITTED_LOG_SIZE);
  readonly #dstPort = new Uint16Array(ADMITTED_LOG_SIZE);
  readonly #privPort = new Uint16Array(ADMITTED_LOG_SIZE);
  /** Where among the other pending events each was recorded (their count then). */
  readonly #at = new Int32Array(ADMITTED_LOG_SIZE);
  readonly #rule: string[] = new Array<string>(ADMITTED_LOG_SIZE).fill("");
  readonly #user: (string | null)[] = new Array<string | null>(ADMITTED_LOG_SIZE).fill(null);
  #n = 0;

  /** Events recorded since the last `drainInto`. */
  get size(): number {
    return this.#n;
  }

  /** True when the next `record` needs a `drainInto` first. */
  get full(): boolean {
    return this.#n === ADMITTED_LOG_SIZE;
  }

  /**
   * Records one admitted flow (DNAT: `priv:privPort` is the server); `at` is
   * the number of other events pending, which keeps the order on drain. The
   * caller drains first when `full`.
   */
  record(
    at: number,
    time: number,
    proto: number,
    src: number,
    srcPort: number,
    dst: number,
    dstPort: number,
    priv: number,
    privPort: number,
    rule: string,
    user: string | null,
  ): void {
    const i = this.#n++;
    this.#at[i] = at;
    this.#time[i] = time;
    this.#proto[i] = proto;
    this.#src[i] = src;
    this.#srcPort[i] = srcPort;
    this.#dst[i] = dst;
    this.#dstPort[i] = dstPort;
    this.#priv[i] = priv;
    this.#privPort[i] = privPort;
    this.#rule[i] = rule;
    this.#user[i] = user;
  }

  /** `pending` with the recorded events built and merged in at their places; empties the log. */
  drainInto<E>(
    pending: E[],
    format: (addr: number) => string = formatIpv4,
  ): (E | FlowAdmittedEvent)[] {
    const n = this.#n;
    if (n === 0) return pending;
    const out: (E | FlowAdmittedEvent)[] = [];
    let p = 0;
    for (let i = 0; i < n; i++) {
      while (p < this.#at[i] && p < pending.length) out.push(pending[p++]);
      out.push(this.#event(i, format));
      this.#user[i] = null;
    }
    while (p < pending.length) out.push(pending[p++]);
    this.#n = 0;
    return out;
  }

  #event(i: number, format: (addr: number) => string): FlowAdmittedEvent {
    const user = this.#user[i];
    return {
      type: "flow-admitted",
      time: this.#time[i],
      severity: Severity.Notice,
      proto: this.#proto[i] as 6 | 17,
      src: format(this.#src[i]),
      srcPort: this.#srcPort[i],
      dst: format(this.#dst[i]),
      dstPort: this.#dstPort[i],
      privateAddr: format(this.#priv[i]),
      privatePort: this.#privPort[i],
      rule: this.#rule[i],
      user: user ?? undefined,
    };
  }
}
