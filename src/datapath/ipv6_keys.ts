/**
 * The border between the knock layer's 32-bit keys and IPv6 text. The
 * unlock table and the verifier key an IPv6 source by its interned prefix
 * (`ipv6_ids.ts`) and write it as that id's dotted quad; every string they
 * write passes through here on its way out (events, unlock and knock-state
 * records: `2001:db8:203::/64`), and every IPv6 string on its way in
 * (restored and merged records, revocations) becomes the id again. The knock
 * layer stays IPv4-shaped and never learns of IPv6.
 *
 * It also keeps the ids the knock layer holds from being recycled: one
 * reference per unlocked prefix (until its unlock ends: the events say when)
 * and per penalised prefix (until its penalty ends, else a flood of other
 * sources would recycle the id and the penalty with it). A knock sequence in
 * progress or a failure count holds nothing: the verifier bounds those
 * itself, and a recycled id comes back under another number (`ipv6_ids.ts`).
 */
import type { KnockEvent, UnlockEvent } from "../knock/events.ts";
import type { KnockStateRecord, KnockVerifier, UnlockTable } from "../knock/mod.ts";
import { formatIpv4, parseIpv4 } from "../packet/mod.ts";
import { Ipv6Ids, isIpv6Id } from "./ipv6_ids.ts";
import type { UnlockRecord } from "./messages.ts";

/** IPv6 keys of the unlock table and the verifier, as text and as held ids. */
export class Ipv6Keys {
  /** The prefix ids an unlock holds (one reference each). */
  readonly #unlocked = new Set<number>();
  /** The prefix ids a penalty holds, to when (ms). */
  readonly #penalised = new Map<number, number>();

  constructor(readonly ids: Ipv6Ids, public unlockPrefix: number) {}

  /**
   * An address as the knock layer keys it: IPv4 text as it is; IPv6 (an
   * address, or a prefix with its length) as its `unlockPrefix` prefix's id
   * in dotted form, interned when `create`. Null for anything else (or an
   * unknown prefix when not `create`).
   */
  internal(ip: string, nowSec: number, create = true): string | null {
    if (typeof ip !== "string") return null;
    if (!ip.includes(":")) return ip;
    return this.ids.internal(ip, this.unlockPrefix, nowSec, create);
  }

  /** The dotted id of WAN IPv6 address `text` (admission6 pins them), or "" when it is none of ours. */
  wanAddress(text: string, nowSec: number): string {
    return this.ids.internal(text, 128, nowSec, false) ?? "";
  }

  /** A string the knock layer wrote, an interned id's dotted quad turned into IPv6 text. */
  external(s: string): string {
    return this.ids.external(s);
  }

  /** An unlock record as the control plane reads it. */
  externalUnlock(r: UnlockRecord): UnlockRecord {
    return { ...r, ip: this.ids.external(r.ip), wanAddress: this.ids.external(r.wanAddress) };
  }

  /** A record from the control plane (the store) keyed as the knock layer keys it, or null. */
  internalRecord<R extends { ip: string }>(r: R, nowSec: number): R | null {
    const ip = this.internal(r.ip, nowSec);
    return ip === null ? null : { ...r, ip };
  }

  /** Unlock records from the store, keyed as the knock layer keys them (unreadable ones left out). */
  internalUnlocks(records: readonly UnlockRecord[], nowSec: number): UnlockRecord[] {
    const out: UnlockRecord[] = [];
    for (const r of records) {
      const m = this.internalRecord(r, nowSec);
      if (m === null) continue;
      const v6 = typeof r.wanAddress === "string" && r.wanAddress.includes(":");
      out.push(v6 ? { ...m, wanAddress: this.wanAddress(r.wanAddress, nowSec) } : m);
    }
    return out;
  }

  /** Knock-state records from the store, keyed as the verifier keys them; live penalties held. */
  internalKnockState(
    records: readonly KnockStateRecord[],
    nowMs: number,
  ): KnockStateRecord[] {
    const out: KnockStateRecord[] = [];
    for (const r of records) {
      const m = this.internalRecord(r, Math.floor(nowMs / 1000));
      if (m === null) continue;
      out.push(m);
      const n = parseIpv4(m.ip);
      if (m.type === "failures" && n !== null && isIpv6Id(n) && m.penaltyUntil > nowMs) {
        this.#holdPenalty(n, m.penaltyUntil);
      }
    }
    return out;
  }

  /** An event of the knock layer with IPv6 keys as text; an unlock or penalty it reports holds or lets go. */
  externalEvent(e: KnockEvent | UnlockEvent): KnockEvent | UnlockEvent {
    const ids = this.ids;
    const n = parseIpv4(e.ip);
    if (n === null || !isIpv6Id(n)) return e;
    const ip = ids.text(n);
    if ((e.type === "unlock-expired" || e.type === "unlock-revoked") && this.#unlocked.delete(n)) {
      ids.unref(n);
    }
    if (e.type === "knock-penalty") this.#holdPenalty(n, e.until);
    return "firstIp" in e && typeof e.firstIp === "string"
      ? { ...e, ip, firstIp: ids.external(e.firstIp) }
      : { ...e, ip };
  }

  /** Unlock `key` holds its id (an IPv6 prefix; IPv4 keys are left alone). */
  holdUnlock(key: number): void {
    if (!isIpv6Id(key) || this.#unlocked.has(key)) return;
    this.#unlocked.add(key);
    this.ids.ref(key);
  }

  /** The unlock holds again from `unlocks` (after a restore replaced its contents without events). */
  recountUnlocks(unlocks: UnlockTable): void {
    for (const id of this.#unlocked) this.ids.unref(id);
    this.#unlocked.clear();
    for (const r of unlocks.list()) {
      const n = parseIpv4(r.ip);
      if (n !== null) this.holdUnlock(n);
    }
  }

  #holdPenalty(n: number, until: number): void {
    if (!this.#penalised.has(n)) this.ids.ref(n);
    this.#penalised.set(n, Math.max(until, this.#penalised.get(n) ?? 0));
  }

  /** Ends the holds of penalties that are over. */
  releasePenalties(verifier: KnockVerifier, nowMs: number): void {
    for (const [n, until] of this.#penalised) {
      if (until > nowMs || verifier.isPenalised(n, nowMs)) continue;
      this.#penalised.delete(n);
      this.ids.unref(n);
    }
  }

  /** Address `n` as text: an interned id's IPv6 text, or a dotted quad. */
  format(n: number): string {
    return isIpv6Id(n) ? this.ids.text(n) : formatIpv4(n);
  }
}
