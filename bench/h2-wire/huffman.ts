// The Huffman code HPACK string literals may be written in (RFC 7541 Appendix B), decoding only: the
// canned HTTP/2 bench server reads the clients' header blocks, and node:http2 (nghttp2) Huffman-codes
// every literal it can shorten, the :path included.
//
// The code is canonical: within one length, codes count up in symbol order, and each length's first
// code follows the last of the shorter ones. So the table below holds only each symbol's code length
// (Appendix B's "len" column, symbols 0-255 and EOS = 256), and the codes are derived from it.
// Decoding walks the bits one at a time against the first code of each length: at most 30 steps a
// symbol, 5 to 8 for the characters a path is made of. Fast enough for a server that decodes a
// three-character :path per request, and checkable against the appendix line by line.

// biome-ignore format: 16 lengths a row, symbols 0x00-0xff then EOS, as Appendix B lists them
const CODE_LENGTHS = [
  13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28, // 0x00
  28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 28, // 0x10
   6, 10, 10, 12, 13,  6,  8, 11, 10, 10,  8, 11,  8,  6,  6,  6, // 0x20 ' ' to '/'
   5,  5,  5,  6,  6,  6,  6,  6,  6,  6,  7,  8, 15,  6, 12, 10, // 0x30 '0' to '?'
  13,  6,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7, // 0x40 '@' to 'O'
   7,  7,  7,  7,  7,  7,  7,  7,  8,  7,  8, 13, 19, 13, 14,  6, // 0x50 'P' to '_'
  15,  5,  6,  5,  6,  5,  6,  6,  6,  5,  7,  7,  6,  6,  6,  5, // 0x60 '`' to 'o'
   6,  7,  6,  5,  5,  6,  7,  7,  7,  7,  7, 15, 11, 14, 13, 28, // 0x70 'p' to DEL
  20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23, // 0x80
  24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24, // 0x90
  22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23, // 0xa0
  21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23, // 0xb0
  26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25, // 0xc0
  19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27, // 0xd0
  20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23, // 0xe0
  26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26, // 0xf0
  30, // EOS
];

const EOS = 256;
const MAX_LENGTH = 30;

/** The canonical code's shape: per length, its first code, how many codes, where its symbols start. */
interface CodeShape {
  firstCode: Int32Array;
  count: Int32Array;
  offset: Int32Array;
  /** The symbols in code order: by length, then by symbol. */
  symbols: Uint16Array;
  /** Each symbol's code (right-aligned), for the tests' look against Appendix B. */
  codes: Uint32Array;
}

function shapeOf(lengths: readonly number[]): CodeShape {
  const count = new Int32Array(MAX_LENGTH + 1);
  for (const len of lengths) count[len]!++;
  const firstCode = new Int32Array(MAX_LENGTH + 2);
  const offset = new Int32Array(MAX_LENGTH + 2);
  let code = 0;
  let kraft = 0; // sum of 2^(30 - len): exactly 2^30 for a complete prefix code
  for (let len = 1; len <= MAX_LENGTH; len++) {
    firstCode[len] = code;
    offset[len + 1] = offset[len]! + count[len]!;
    code = (code + count[len]!) * 2;
    kraft += count[len]! * 2 ** (MAX_LENGTH - len);
  }
  // A length mistyped in the table above breaks this: the code would have a gap or an overlap.
  if (lengths.length !== 257 || kraft !== 2 ** MAX_LENGTH) {
    throw new Error('HPACK Huffman table: the code lengths do not form a complete prefix code');
  }
  const symbols = new Uint16Array(lengths.length);
  const codes = new Uint32Array(lengths.length);
  const next = offset.slice();
  for (let sym = 0; sym < lengths.length; sym++) {
    const len = lengths[sym]!;
    const i = next[len]!++;
    symbols[i] = sym;
    codes[sym] = firstCode[len]! + (i - offset[len]!);
  }
  return { firstCode, count, offset, symbols, codes };
}

const SHAPE = shapeOf(CODE_LENGTHS);

/** Symbol `sym`'s code and its length in bits (for tests). */
export function huffmanCode(sym: number): { code: number; bits: number } {
  return { code: SHAPE.codes[sym]!, bits: CODE_LENGTHS[sym]! };
}

/**
 * Decodes `src[start, end)` into bytes. Throws on EOS in the data, on padding longer than 7 bits, and
 * on padding that is not the most significant bits of EOS (all ones): RFC 7541 section 5.2.
 */
export function huffmanDecode(src: Uint8Array, start: number, end: number): Buffer {
  const { firstCode, count, offset, symbols } = SHAPE;
  // Every symbol is at least 5 bits: at most 8/5 output bytes per input byte.
  const out = Buffer.allocUnsafe(Math.ceil(((end - start) * 8) / 5));
  let n = 0;
  let code = 0;
  let len = 0;
  let allOnes = true; // the bits of the unfinished symbol are all ones (a valid padding so far)
  for (let i = start; i < end; i++) {
    const byte = src[i]!;
    for (let bit = 7; bit >= 0; bit--) {
      const b = (byte >> bit) & 1;
      code = code * 2 + b;
      len++;
      if (b === 0) allOnes = false;
      const k = code - firstCode[len]!;
      if (k < count[len]!) {
        const sym = symbols[offset[len]! + k]!;
        if (sym === EOS) throw new Error('HPACK Huffman: EOS in a string literal');
        out[n++] = sym;
        code = 0;
        len = 0;
        allOnes = true;
      } else if (len === MAX_LENGTH) {
        throw new Error('HPACK Huffman: no code matches'); // unreachable with a complete code
      }
    }
  }
  if (len > 7 || !allOnes) throw new Error('HPACK Huffman: invalid padding');
  return out.subarray(0, n);
}
