/**
 * The Internet checksum (RFC 1071) and its incremental update (RFC 1624).
 *
 * Sums are kept "unfolded": plain JavaScript numbers that grow past 16 bits
 * while words are added, folded to 16 bits once at the end. A 64 KiB packet
 * sums to under 2^32, far below the 2^53 a double holds exactly.
 */

/**
 * Adds the big-endian 16-bit words of `buf[start..end)` to `sum` and returns
 * the unfolded result. An odd trailing byte is padded with a zero byte.
 */
export function checksumAdd(sum: number, buf: Uint8Array, start: number, end: number): number {
  let i = start;
  const even = end - ((end - start) & 1);
  for (; i < even; i += 2) sum += (buf[i] << 8) | buf[i + 1];
  if (i < end) sum += buf[i] << 8; // RFC 1071: pad the odd byte on the right
  return sum;
}

/** Folds an unfolded sum into 16 bits with end-around carries; not inverted. */
export function checksumFold(sum: number): number {
  // Beyond 2^32 the bitwise operators would truncate, so divide instead.
  while (sum > 0xffffffff) sum = (sum % 0x10000) + Math.floor(sum / 0x10000);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return sum;
}

/** The RFC 1071 checksum of `buf[start..end)`: folded and inverted. */
export function internetChecksum(buf: Uint8Array, start: number, end: number): number {
  return ~checksumFold(checksumAdd(0, buf, start, end)) & 0xffff;
}

/**
 * The unfolded sum of the TCP/UDP pseudo header: source and destination
 * addresses, zero + protocol, and the L4 length.
 */
export function pseudoHeaderSum(src: number, dst: number, proto: number, l4Len: number): number {
  return (src >>> 16) + (src & 0xffff) + (dst >>> 16) + (dst & 0xffff) + proto + l4Len;
}

/**
 * Updates a stored (inverted) checksum after a 16-bit word of the covered data
 * changed from `oldWord` to `newWord`, per RFC 1624 eqn 3:
 * HC' = ~(~HC + ~m + m').
 */
export function checksumAdjust16(check: number, oldWord: number, newWord: number): number {
  const sum = (~check & 0xffff) + (~oldWord & 0xffff) + (newWord & 0xffff);
  return ~checksumFold(sum) & 0xffff;
}

/**
 * Updates a stored (inverted) checksum after a 32-bit value of the covered
 * data (an address) changed from `old32` to `new32`; RFC 1624 eqn 3 applied to
 * both halves at once.
 */
export function checksumAdjust32(check: number, old32: number, new32: number): number {
  const sum = (~check & 0xffff) + (~(old32 >>> 16) & 0xffff) + (~old32 & 0xffff) +
    (new32 >>> 16) + (new32 & 0xffff);
  return ~checksumFold(sum) & 0xffff;
}

/**
 * Updates a NON-inverted 16-bit partial sum (virtio `NEEDS_CSUM`: the L4
 * checksum field holds the folded pseudo-header sum) after a covered word
 * changed: sum' = sum + ~m + m' in ones' complement arithmetic.
 */
export function sumAdjust16(sum: number, oldWord: number, newWord: number): number {
  return checksumFold((sum & 0xffff) + (~oldWord & 0xffff) + (newWord & 0xffff));
}

/** Like {@link sumAdjust16} for a 32-bit value such as an address. */
export function sumAdjust32(sum: number, old32: number, new32: number): number {
  return checksumFold(
    (sum & 0xffff) + (~(old32 >>> 16) & 0xffff) + (~old32 & 0xffff) + (new32 >>> 16) +
      (new32 & 0xffff),
  );
}

/**
 * The unfolded sum of the IPv6 pseudo header (RFC 8200 §8.1) read from the
 * IPv6 header at `buf[ipOff..]`: both addresses, the upper-layer length (the
 * payload length minus the extension headers before it, as a 32-bit value)
 * and the upper-layer protocol. The destination is the final one only when no
 * routing header has segments left; `Ipv6Packet.check()` refuses those.
 */
export function pseudoHeaderSum6(
  buf: Uint8Array,
  ipOff: number,
  proto: number,
  upperLen: number,
): number {
  return checksumAdd(0, buf, ipOff + 8, ipOff + 40) + (upperLen >>> 16) + (upperLen & 0xffff) +
    proto;
}

/** The unfolded IPv6 pseudo-header sum of addresses given as words (`src[si..si+4)`, `dst[di..di+4)`). */
export function pseudoHeaderSum6Words(
  src: ArrayLike<number>,
  si: number,
  dst: ArrayLike<number>,
  di: number,
  proto: number,
  upperLen: number,
): number {
  let sum = (upperLen >>> 16) + (upperLen & 0xffff) + proto;
  for (let i = 0; i < 4; i++) {
    sum += (src[si + i] >>> 16) + (src[si + i] & 0xffff) + (dst[di + i] >>> 16) +
      (dst[di + i] & 0xffff);
  }
  return sum;
}

/** The unfolded ones' complement change ~old + new of a 128-bit address, for the adjust helpers. */
function delta128(old: ArrayLike<number>, oi: number, neu: ArrayLike<number>, ni: number): number {
  let sum = 0;
  for (let i = 0; i < 4; i++) {
    const o = old[oi + i], n = neu[ni + i];
    sum += (~(o >>> 16) & 0xffff) + (~o & 0xffff) + (n >>> 16) + (n & 0xffff);
  }
  return sum;
}

/**
 * Updates a stored (inverted) checksum after an IPv6 address it covers (through
 * the pseudo header) changed from `old[oi..oi+4)` to `neu[ni..ni+4)`: RFC 1624
 * eqn 3 over the eight 16-bit words, for NAT66. NPTv6 needs no such update
 * (`nptv6Translate`: RFC 6296's mapping keeps the address's ones' complement
 * sum, and the checksums with it).
 */
export function checksumAdjust128(
  check: number,
  old: ArrayLike<number>,
  oi: number,
  neu: ArrayLike<number>,
  ni: number,
): number {
  return ~checksumFold((~check & 0xffff) + delta128(old, oi, neu, ni)) & 0xffff;
}

/** Like {@link sumAdjust32} (a NON-inverted partial sum) for a 128-bit IPv6 address. */
export function sumAdjust128(
  sum: number,
  old: ArrayLike<number>,
  oi: number,
  neu: ArrayLike<number>,
  ni: number,
): number {
  return checksumFold((sum & 0xffff) + delta128(old, oi, neu, ni));
}
