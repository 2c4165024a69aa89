/** Growing flat typed arrays: a copy enlarged to `n` elements, zero-filled. */

/** A copy of `a` enlarged to `n` elements. */
export function growU8(a: Uint8Array, n: number): Uint8Array<ArrayBuffer> {
  const b = new Uint8Array(n);
  b.set(a);
  return b;
}

/** A copy of `a` enlarged to `n` elements. */
export function growU16(a: Uint16Array, n: number): Uint16Array<ArrayBuffer> {
  const b = new Uint16Array(n);
  b.set(a);
  return b;
}

/** A copy of `a` enlarged to `n` elements. */
export function growU32(a: Uint32Array, n: number): Uint32Array<ArrayBuffer> {
  const b = new Uint32Array(n);
  b.set(a);
  return b;
}

/** A copy of `a` enlarged to `n` elements. */
export function growI32(a: Int32Array, n: number): Int32Array<ArrayBuffer> {
  const b = new Int32Array(n);
  b.set(a);
  return b;
}

/** A copy of `a` enlarged to `n` elements. */
export function growI8(a: Int8Array, n: number): Int8Array<ArrayBuffer> {
  const b = new Int8Array(n);
  b.set(a);
  return b;
}

/** A copy of `a` enlarged to `n` elements. */
export function growF64(a: Float64Array, n: number): Float64Array<ArrayBuffer> {
  const b = new Float64Array(n);
  b.set(a);
  return b;
}
