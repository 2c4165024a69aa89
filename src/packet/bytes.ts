/** Big-endian reads and writes on a byte buffer; reads past the end give 0. */

/** Reads a big-endian 16-bit word at `i`. */
export function read16(b: Uint8Array, i: number): number {
  return (b[i] << 8) | b[i + 1];
}

/** Reads a big-endian unsigned 32-bit word at `i`. */
export function read32(b: Uint8Array, i: number): number {
  return ((b[i] << 24) | (b[i + 1] << 16) | (b[i + 2] << 8) | b[i + 3]) >>> 0;
}

/** Writes a big-endian 16-bit word at `i`. */
export function write16(b: Uint8Array, i: number, v: number): void {
  b[i] = v >>> 8;
  b[i + 1] = v;
}

/** Writes a big-endian 32-bit word at `i`. */
export function write32(b: Uint8Array, i: number, v: number): void {
  b[i] = v >>> 24;
  b[i + 1] = v >>> 16;
  b[i + 2] = v >>> 8;
  b[i + 3] = v;
}
