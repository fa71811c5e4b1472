/**
 * Buffers for bytes the caller keeps (a body, a body chunk), allocated so that a small one never holds
 * a large ArrayBuffer alive.
 *
 * Why: node's Buffer.allocUnsafe() (and Buffer.from(), Buffer.concat()) slices buffers under half of
 * `Buffer.poolSize` out of a shared slab. That slab was 8 KiB until Node 24.22 and 26.3 raised it to
 * 64 KiB (nodejs/node#63597): since then a 12-byte body its caller keeps pins 64 KiB, the very cost
 * that copying it out of the 64 KiB socket read buffer avoids. So what is kept is allocated here, the
 * way node did before on every version: under 4 KiB a slice of an 8 KiB slab of our own, from 4 KiB
 * on a buffer of exactly its size.
 */

const SLAB_SIZE = 8 * 1024;
/** Smaller buffers come from the slab (node's rule for its own pool: under half of it). */
const SLAB_MAX = SLAB_SIZE >>> 1;

let slab: ArrayBuffer | null = null;
let slabOffset = 0;

/** An uninitialized buffer of `size` bytes, backed by at most 8 KiB unless it is larger itself. */
export function allocKept(size: number): Buffer {
  if (size >= SLAB_MAX) return Buffer.allocUnsafeSlow(size);
  if (slab === null || size > SLAB_SIZE - slabOffset) {
    slab = Buffer.allocUnsafeSlow(SLAB_SIZE).buffer as ArrayBuffer;
    slabOffset = 0;
  }
  const buf = Buffer.from(slab!, slabOffset, size);
  // 8-byte aligned, as node aligns its pool: a later Float64Array view of a slice stays possible.
  slabOffset = (slabOffset + size + 7) & ~7;
  return buf;
}

/** A copy of `bytes` that the caller may keep (see allocKept). */
export function copyKept(bytes: Buffer): Buffer {
  const copy = allocKept(bytes.length);
  copy.set(bytes);
  return copy;
}

/** `chunks` joined into one buffer that the caller may keep; `total` is their summed length. */
export function concatKept(chunks: readonly Buffer[], total: number): Buffer {
  const whole = allocKept(total);
  let at = 0;
  for (let i = 0; i < chunks.length; i++) {
    whole.set(chunks[i]!, at);
    at += chunks[i]!.length;
  }
  return whole;
}

/** Up to this many bytes, copyInto() copies in JavaScript. */
const SMALL_COPY = 128;

/**
 * Copies data[start, end) into `target` at `at`. A short range is copied by a loop here: Buffer#copy
 * is a call into C++ that costs more than the bytes (12 bytes at C=1, where nothing is in cache: 0.7
 * against 1.3 µs); a long one by that call, whose memcpy wins.
 */
export function copyInto(data: Buffer, start: number, end: number, target: Buffer, at: number): void {
  if (end - start > SMALL_COPY) {
    data.copy(target, at, start, end);
    return;
  }
  for (let i = start; i < end; i++) target[at++] = data[i]!;
}
