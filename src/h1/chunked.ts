/**
 * The chunked transfer coding of a response body (RFC 9112 §7.1): chunk-size lines with their
 * extensions, chunk data, and the CRLF after each chunk, up to the last-chunk line. The trailer section
 * that follows is not read here: ChunkedDecoder stops after the last-chunk line (lastChunkSeen) and the
 * parser reads the trailer fields with its head reader.
 *
 * One ChunkedDecoder belongs to one ResponseParser for the connection's life and is reset for each
 * chunked body, so reading allocates nothing: chunk data goes to onBody as a range of the read, never
 * copied or decoded. Framing bytes are read one at a time by a switch over integer states, kept in
 * locals for the length of a read.
 *
 * Deliberate strictness choices:
 * - A chunk-size line (size plus extensions) longer than MAX_CHUNK_LINE is a ParseError: extensions
 *   carry nothing a client uses, and without a bound a server could make us scan forever (cf. Node's
 *   CVE-2024-22019 fix).
 * - Chunk extensions are validated (token names, token or quoted-string values) and then ignored.
 * - BWS after the chunk size is allowed only before a ';' (RFC 9112 §7.1.1); "25  \r\n" is refused,
 *   as by llhttp. Each line, and the CRLF after chunk data, must end in CRLF.
 * - A chunk size beyond 2^53 - 1 is a ParseError.
 */
import * as fields from './fields.js';
import { parseError } from './fields.js';

// Byte constants are declared here and the hot-path imports copied into module constants: optimized
// code reads an imported binding through its module cell at every use, while a module constant is
// folded into the code. Imported, CR/LF/SP/HTAB measurably slowed the per-character loops below.
const HEX = fields.HEX;
const TCHAR = fields.TCHAR;
const CR = 13;
const LF = 10;
const SP = 32;
const HTAB = 9;

/** Where chunked bytes go: the parser's handler. */
export interface ChunkSink {
  /** Chunk data: data[start, end). */
  onBody(data: Buffer, start: number, end: number): void;
}

const MAX_CHUNK_LINE = 16384;

// The largest value v such that v * 16 + 15 stays a safe integer: chunk sizes beyond 2^53 are refused.
const MAX_CHUNK_SIZE_BEFORE_SHIFT = Math.floor((Number.MAX_SAFE_INTEGER - 15) / 16);

// Decoder states. Plain numbers (not a TS enum object) so the switch compiles to integer compares.
const C_SIZE_START = 0; // first hex digit of a chunk size
const C_SIZE = 1;
const C_SIZE_WS = 2; // BWS after the size: only ';' may follow
const C_EXT_NAME_START = 3;
const C_EXT_NAME = 4;
const C_EXT_AFTER_NAME = 5;
const C_EXT_VALUE_START = 6;
const C_EXT_VALUE_TOKEN = 7;
const C_EXT_QUOTED = 8;
const C_EXT_QUOTED_ESCAPE = 9;
const C_EXT_AFTER_VALUE = 10;
const C_SIZE_LF = 11;
const C_DATA = 12;
const C_DATA_CR = 13;
const C_DATA_LF = 14;
const C_LAST = 15; // the last-chunk line has been read: the trailer section follows

export class ChunkedDecoder {
  private readonly sink: ChunkSink;
  private state = C_SIZE_START;
  private chunkSize = 0; // size of the chunk whose size line is being read
  private remaining = 0; // data bytes left in the current chunk
  private lineBytes = 0; // bytes of the current chunk-size line so far
  private _received = 0; // data bytes handed out in this body

  constructor(sink: ChunkSink) {
    this.sink = sink;
  }

  /** Data bytes of this body handed to onBody so far (for "closed after N bytes" messages). */
  get received(): number {
    return this._received;
  }

  /** true once the last-chunk line has been read: the caller reads the trailer section next. */
  get lastChunkSeen(): boolean {
    return this.state === C_LAST;
  }

  /** Start a new chunked body. */
  reset(): void {
    this.state = C_SIZE_START;
    this.chunkSize = 0;
    this.remaining = 0;
    this.lineBytes = 0;
    this._received = 0;
  }

  /**
   * Chunked bytes from data[pos, len): hands chunk data to the sink and returns the position reached,
   * which is len unless the last-chunk line ended before it (then lastChunkSeen is true).
   */
  execute(data: Buffer, pos: number, len: number): number {
    while (pos < len) {
      if (this.state === C_DATA) {
        const n = Math.min(this.remaining, len - pos);
        this.remaining -= n;
        this._received += n;
        if (this.remaining === 0) this.state = C_DATA_CR;
        this.sink.onBody(data, pos, pos + n);
        pos += n;
      } else {
        pos = this.readFraming(data, pos, len);
        if (this.state === C_LAST) return pos;
      }
    }
    return pos;
  }

  /** Chunk-size lines (with extensions) and the CRLF after chunk data, one byte at a time. */
  private readFraming(data: Buffer, pos: number, len: number): number {
    let st = this.state;
    let lineBytes = this.lineBytes;
    for (; pos < len; pos++) {
      const c = data[pos];
      switch (st) {
        case C_DATA_CR:
          if (c !== CR) throw parseError('expected CRLF after chunk data');
          st = C_DATA_LF;
          continue;
        case C_DATA_LF:
          if (c !== LF) throw parseError('expected CRLF after chunk data');
          st = C_SIZE_START;
          lineBytes = 0;
          continue;
        case C_SIZE_START: {
          const h = HEX[c];
          if (h === 0) throw parseError(`invalid character 0x${c.toString(16)} in chunk size`);
          this.chunkSize = h - 1;
          st = C_SIZE;
          break;
        }
        case C_SIZE: {
          const h = HEX[c];
          if (h !== 0) {
            if (this.chunkSize > MAX_CHUNK_SIZE_BEFORE_SHIFT) throw parseError('chunk size too large');
            this.chunkSize = this.chunkSize * 16 + h - 1;
          } else if (c === CR) st = C_SIZE_LF;
          else if (c === 0x3b) st = C_EXT_NAME_START;
          else if (c === SP || c === HTAB) st = C_SIZE_WS;
          else throw parseError(`invalid character 0x${c.toString(16)} in chunk size`);
          break;
        }
        case C_SIZE_WS:
          // BWS is allowed only before a ';' (RFC 9112 §7.1.1); "25  \r\n" is refused as by llhttp.
          if (c === 0x3b) st = C_EXT_NAME_START;
          else if (c !== SP && c !== HTAB)
            throw parseError(`invalid character 0x${c.toString(16)} in chunk size`);
          break;
        case C_EXT_NAME_START:
          if (TCHAR[c] === 1) st = C_EXT_NAME;
          else if (c !== SP && c !== HTAB) throw parseError('invalid chunk extension');
          break;
        case C_EXT_NAME:
          if (TCHAR[c] === 1) break;
          if (c === CR) st = C_SIZE_LF;
          else if (c === 0x3b) st = C_EXT_NAME_START;
          else if (c === 0x3d) st = C_EXT_VALUE_START;
          else if (c === SP || c === HTAB) st = C_EXT_AFTER_NAME;
          else throw parseError('invalid chunk extension');
          break;
        case C_EXT_AFTER_NAME:
          if (c === CR) st = C_SIZE_LF;
          else if (c === 0x3b) st = C_EXT_NAME_START;
          else if (c === 0x3d) st = C_EXT_VALUE_START;
          else if (c !== SP && c !== HTAB) throw parseError('invalid chunk extension');
          break;
        case C_EXT_VALUE_START:
          if (c === 0x22) st = C_EXT_QUOTED;
          else if (TCHAR[c] === 1) st = C_EXT_VALUE_TOKEN;
          else if (c !== SP && c !== HTAB) throw parseError('invalid chunk extension value');
          break;
        case C_EXT_VALUE_TOKEN:
          if (TCHAR[c] === 1) break;
          if (c === CR) st = C_SIZE_LF;
          else if (c === 0x3b) st = C_EXT_NAME_START;
          else if (c === SP || c === HTAB) st = C_EXT_AFTER_VALUE;
          else throw parseError('invalid chunk extension value');
          break;
        case C_EXT_QUOTED:
          // qdtext = HTAB / SP / %x21 / %x23-5B / %x5D-7E / obs-text
          if (c === 0x22) st = C_EXT_AFTER_VALUE;
          else if (c === 0x5c) st = C_EXT_QUOTED_ESCAPE;
          else if ((c < 0x20 && c !== HTAB) || c === 0x7f) {
            throw parseError('invalid character in quoted chunk extension value');
          }
          break;
        case C_EXT_QUOTED_ESCAPE:
          if ((c < 0x20 && c !== HTAB) || c === 0x7f) {
            throw parseError('invalid character in quoted chunk extension value');
          }
          st = C_EXT_QUOTED;
          break;
        case C_EXT_AFTER_VALUE:
          if (c === CR) st = C_SIZE_LF;
          else if (c === 0x3b) st = C_EXT_NAME_START;
          else if (c !== SP && c !== HTAB) throw parseError('invalid chunk extension');
          break;
        case C_SIZE_LF:
          if (c !== LF) throw parseError('expected LF after CR in chunk size line');
          this.lineBytes = 0;
          if (this.chunkSize === 0) {
            this.state = C_LAST; // last-chunk: the trailer section follows
          } else {
            this.state = C_DATA;
            this.remaining = this.chunkSize;
          }
          return pos + 1;
      }
      // Only size-line states reach here (data CRLF states `continue`): bound the line length.
      if (++lineBytes > MAX_CHUNK_LINE) throw parseError('chunk size line too long');
    }
    this.state = st;
    this.lineBytes = lineBytes;
    return pos;
  }
}
