// HPACK (RFC 7541) for the canned HTTP/2 bench server: a whole decoder for the clients' header
// blocks, and the few bytes the server's own prebuilt response heads need.
//
// The decoder must see every block of a connection, in order, even when the server only wants the
// :path: an entry a client adds to the dynamic table now is what its later blocks refer to by index.
import { huffmanDecode } from './huffman.js';

/** The static table (Appendix A); index 1 is STATIC[0]. */
// biome-ignore format: one entry a line would be 61 lines
const STATIC: ReadonlyArray<readonly [string, string]> = [
  [':authority', ''], [':method', 'GET'], [':method', 'POST'], [':path', '/'], [':path', '/index.html'],
  [':scheme', 'http'], [':scheme', 'https'], [':status', '200'], [':status', '204'], [':status', '206'],
  [':status', '304'], [':status', '400'], [':status', '404'], [':status', '500'], ['accept-charset', ''],
  ['accept-encoding', 'gzip, deflate'], ['accept-language', ''], ['accept-ranges', ''], ['accept', ''],
  ['access-control-allow-origin', ''], ['age', ''], ['allow', ''], ['authorization', ''],
  ['cache-control', ''], ['content-disposition', ''], ['content-encoding', ''], ['content-language', ''],
  ['content-length', ''], ['content-location', ''], ['content-range', ''], ['content-type', ''],
  ['cookie', ''], ['date', ''], ['etag', ''], ['expect', ''], ['expires', ''], ['from', ''], ['host', ''],
  ['if-match', ''], ['if-modified-since', ''], ['if-none-match', ''], ['if-range', ''],
  ['if-unmodified-since', ''], ['last-modified', ''], ['link', ''], ['location', ''], ['max-forwards', ''],
  ['proxy-authenticate', ''], ['proxy-authorization', ''], ['range', ''], ['referer', ''], ['refresh', ''],
  ['retry-after', ''], ['server', ''], ['set-cookie', ''], ['strict-transport-security', ''],
  ['transfer-encoding', ''], ['user-agent', ''], ['vary', ''], ['via', ''], ['www-authenticate', ''],
];

export class HpackError extends Error {}

/** An entry's size for the table's accounting: its octets plus 32 (section 4.1). */
const entrySize = (name: string, value: string) => name.length + value.length + 32;

/**
 * One connection's decoding context. Strings are latin1, so a string's length is its octet count.
 * `maxTableSize` is what the server's SETTINGS_HEADER_TABLE_SIZE allows (4096 unless it says more).
 */
export class HpackDecoder {
  /** Newest first: dynamic index 62 is entries[0]. */
  private entries: Array<readonly [string, string]> = [];
  private size = 0;
  private limit: number;

  constructor(private readonly maxTableSize = 4096) {
    this.limit = maxTableSize;
  }

  /** Decodes one whole header block into its fields, in order. Throws HpackError when malformed. */
  decode(block: Uint8Array): Array<[string, string]> {
    const fields: Array<[string, string]> = [];
    const r = { pos: 0 };
    let fieldSeen = false;
    while (r.pos < block.length) {
      const b = block[r.pos]!;
      if (b & 0x80) {
        // Indexed field (6.1).
        const [name, value] = this.entry(readInt(block, r, 7));
        fields.push([name, value]);
      } else if (b & 0x40) {
        // Literal with incremental indexing (6.2.1).
        const field = this.literal(block, r, 6);
        this.insert(field[0], field[1]);
        fields.push(field);
      } else if (b & 0x20) {
        // Dynamic table size update (6.3): only at the start of a block.
        if (fieldSeen) throw new HpackError('HPACK: table size update after a field');
        const size = readInt(block, r, 5);
        if (size > this.maxTableSize) throw new HpackError(`HPACK: table size ${size} over the limit`);
        this.limit = size;
        this.evict(0);
        continue;
      } else {
        // Literal without indexing (6.2.2) or never indexed (6.2.3): 4-bit prefix either way.
        fields.push(this.literal(block, r, 4));
      }
      fieldSeen = true;
    }
    return fields;
  }

  private entry(index: number): readonly [string, string] {
    if (index === 0) throw new HpackError('HPACK: index 0');
    if (index <= STATIC.length) return STATIC[index - 1]!;
    const e = this.entries[index - STATIC.length - 1];
    if (e === undefined) throw new HpackError(`HPACK: index ${index} beyond the tables`);
    return e;
  }

  private literal(block: Uint8Array, r: { pos: number }, prefix: number): [string, string] {
    const index = readInt(block, r, prefix);
    const name = index === 0 ? readString(block, r) : this.entry(index)[0];
    return [name, readString(block, r)];
  }

  private insert(name: string, value: string): void {
    const size = entrySize(name, value);
    this.evict(size);
    // An entry larger than the whole table empties it and is not added (4.4).
    if (size > this.limit) return;
    this.entries.unshift([name, value]);
    this.size += size;
  }

  /** Drops the oldest entries until `room` more octets fit. */
  private evict(room: number): void {
    while (this.entries.length > 0 && this.size + room > this.limit) {
      const [name, value] = this.entries.pop()!;
      this.size -= entrySize(name, value);
    }
  }
}

/** An N-bit prefix integer (5.1), advancing r.pos. */
function readInt(block: Uint8Array, r: { pos: number }, prefix: number): number {
  const max = (1 << prefix) - 1;
  let value = block[r.pos++]! & max;
  if (value < max) return value;
  let shift = 0;
  for (;;) {
    if (r.pos >= block.length) throw new HpackError('HPACK: integer runs past the block');
    const b = block[r.pos++]!;
    value += (b & 0x7f) * 2 ** shift;
    shift += 7;
    if ((b & 0x80) === 0) return value;
    if (shift > 28) throw new HpackError('HPACK: integer too large');
  }
}

/** A string literal (5.2), raw or Huffman-coded, as latin1. */
function readString(block: Uint8Array, r: { pos: number }): string {
  if (r.pos >= block.length) throw new HpackError('HPACK: string missing');
  const huffman = (block[r.pos]! & 0x80) !== 0;
  const len = readInt(block, r, 7);
  const start = r.pos;
  const end = start + len;
  if (end > block.length) throw new HpackError('HPACK: string runs past the block');
  r.pos = end;
  if (!huffman) return Buffer.from(block.buffer, block.byteOffset + start, len).toString('latin1');
  try {
    return huffmanDecode(block, start, end).toString('latin1');
  } catch (err) {
    throw new HpackError((err as Error).message);
  }
}

/** An N-bit prefix integer's bytes, the prefix's high bits set to `flags`. */
function intBytes(value: number, prefix: number, flags: number): number[] {
  const max = (1 << prefix) - 1;
  if (value < max) return [flags | value];
  const out = [flags | max];
  let rest = value - max;
  while (rest >= 0x80) {
    out.push((rest & 0x7f) | 0x80);
    rest = Math.floor(rest / 0x80);
  }
  out.push(rest);
  return out;
}

/**
 * A response head as a header block that leaves the client's dynamic table alone: a static-table
 * :status where there is one, and every other field as a literal without indexing, its name by static
 * index where there is one. Built once per canned response.
 */
export function encodeHead(status: number, fields: ReadonlyArray<readonly [string, string]>): Buffer {
  const bytes: number[] = [];
  const statusIndex = STATIC.findIndex(([n, v]) => n === ':status' && v === String(status));
  if (statusIndex !== -1) bytes.push(...intBytes(statusIndex + 1, 7, 0x80));
  else fields = [[':status', String(status)], ...fields];
  for (const [name, value] of fields) {
    const nameIndex = STATIC.findIndex(([n]) => n === name) + 1;
    bytes.push(...intBytes(nameIndex, 4, 0x00));
    if (nameIndex === 0) bytes.push(...intBytes(name.length, 7, 0), ...Buffer.from(name, 'latin1'));
    bytes.push(...intBytes(value.length, 7, 0), ...Buffer.from(value, 'latin1'));
  }
  return Buffer.from(bytes);
}
