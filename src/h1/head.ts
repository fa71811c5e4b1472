/**
 * The response head (status line and header fields) and the trailer section after a chunked body,
 * read line by line (RFC 9112 §2, §4, §5, §7.1.2).
 *
 * A section that came whole is found with one scan for its CRLFCRLF; otherwise lines are located
 * with Buffer#indexOf(LF) (native memchr), and the complete lines available are decoded
 * with a single latin1Slice (one native call instead of two per field, which dominated the profile),
 * and each line is validated and split in one charCodeAt pass; common field names come back as
 * interned lowercase constants. Only an unfinished line is kept between calls (in a small reusable
 * buffer, bounded by maxHeaderSize), never the socket buffer. One HeadReader belongs to one
 * ResponseParser for the connection's life.
 *
 * Deliberate strictness choices (a client may be strict where RFC 9112 allows leniency):
 * - Line endings must be CRLF. RFC 9112 §2.2 lets a recipient accept a bare LF as a line terminator,
 *   but two parsers disagreeing on where a line ends is exactly what response splitting exploits, so
 *   a bare LF or a bare CR anywhere in the head is a ParseError (this matches llhttp's strict mode).
 * - Only HTTP/1.0 and HTTP/1.1 status lines are accepted (llhttp also takes RTSP/ICE and 0.9).
 * - obs-fold (a field line starting with SP/HTAB) is accepted and, as RFC 9112 §5.2 requires of a
 *   user agent, replaced by a single SP joining the continuation to the previous field value. An
 *   obs-fold line directly after the status line has nothing to continue and is a ParseError.
 * - Header values may not contain control characters other than HTAB (the same set llhttp rejects).
 */
import { HeadersOverflowError, type ParseError } from '../errors.js';
import { type IncomingHeaders, addField, getOwn, setOwn } from '../headers.js';
import { allocKept } from '../kept-buffer.js';
import * as fields from './fields.js';
import { describe, parseError } from './fields.js';

// Byte constants are declared here and the hot-path imports copied into module constants: optimized
// code reads an imported binding through its module cell at every use, while a module constant is
// folded into the code. Imported, CR/LF/SP/HTAB measurably slowed the per-character loops below.
const TCHAR = fields.TCHAR;
const knownName = fields.knownName;
const CR = 13;
const LF = 10;
const SP = 32;
const HTAB = 9;

// Buffer's native latin1 decoder without toString()'s argument juggling. Present on every Node
// Buffer but not in @types/node.
interface Latin1Buffer extends Buffer {
  latin1Slice(start: number, end: number): string;
}

/** Reads one head, or one trailer section, at a time; the parser decides what the head means. */
export class HeadReader {
  private readonly maxHeaderSize: number;
  private readonly maxHeaderCount: number;

  /** true once the empty line ending the section has been read. */
  ended = false;
  /** Reading a trailer section rather than a head. */
  private inTrailers = false;

  private sawStatusLine = false;
  private sectionBytes = 0; // bytes of the current head or trailer section so far
  private fieldCount = 0;
  /** The section's fields: created by the status line, or by the first trailer field. */
  fields: IncomingHeaders | undefined = undefined;
  private lastName: string | undefined = undefined; // for obs-fold
  // From the status line of the head being read.
  statusCode = 0;
  statusText = '';
  httpMinor = 1;

  // The unfinished line carried between read() calls.
  private pend: Buffer | undefined = undefined;
  private pendLen = 0;

  constructor(maxHeaderSize: number, maxHeaderCount: number) {
    this.maxHeaderSize = maxHeaderSize;
    this.maxHeaderCount = maxHeaderCount;
  }

  /** Start reading a head (the final one, or the next after a 1xx). */
  startHead(): void {
    this.inTrailers = false;
    this.reset();
  }

  /** Start reading the trailer section after the last chunk. */
  startTrailers(): void {
    this.inTrailers = true;
    this.reset();
  }

  /** Drop the section's fields (they now belong to whoever was handed them). */
  release(): void {
    this.fields = undefined;
    this.lastName = undefined;
  }

  private reset(): void {
    this.ended = false;
    this.sawStatusLine = false;
    this.sectionBytes = 0;
    this.fieldCount = 0;
    this.fields = undefined;
    this.lastName = undefined;
    this.pendLen = 0;
  }

  /**
   * Head or trailer lines from data[pos, len). Returns the position after the last complete line
   * handled: after the empty line ending the section (then `ended` is true), or len.
   *
   * Decoding is the expensive part (each latin1Slice is a native call costing more than parsing a
   * short line), so the complete lines available are found first, with the byte budget enforced as
   * they are found, then decoded with ONE latin1Slice and cut up with String#slice. The scan stops at
   * the empty line ending the section, so body bytes are never decoded.
   */
  read(data: Buffer, pos: number, len: number): number {
    const inTrailers = this.inTrailers;
    while (pos < len) {
      if (this.pendLen > 0) {
        // Finish the line carried over from the previous call; it is decoded on its own.
        const lf = data.indexOf(LF, pos);
        if (lf === -1) return this.stashPartialLine(data, pos, len, inTrailers);
        this.sectionBytes += this.pendLen + lf + 1 - pos;
        if (this.sectionBytes > this.maxHeaderSize) throw this.overflow(inTrailers);
        this.appendPending(data, pos, lf + 1);
        const buf = this.pend as Latin1Buffer;
        const line = buf.latin1Slice(0, this.pendLen);
        this.pendLen = 0;
        // Don't let one huge line pin a large buffer to an idle connection.
        if (buf.length > 4096) this.pend = undefined;
        pos = lf + 1;
        this.processLines(line);
        if (this.ended) return pos;
        continue;
      }

      const budget = this.maxHeaderSize - this.sectionBytes;
      // A whole section in this read within the budget, as nearly every head is: one scan for its end
      // instead of a native indexOf per line. The first CRLFCRLF ends the first empty line, unless the
      // section starts with one (a leading empty line, or an empty trailer section): the loop below
      // handles that. A bare LF before it, which could hide an earlier empty line, is refused by
      // processLines as the loop's lines would be.
      if (data[pos] !== CR) {
        const sectionEnd = endOfSection(data, pos, len < pos + budget ? len : pos + budget);
        if (sectionEnd !== -1) {
          this.sectionBytes += sectionEnd - pos;
          this.processLines((data as Latin1Buffer).latin1Slice(pos, sectionEnd));
          return sectionEnd;
        }
      }

      // Find the complete lines in data[pos, ...), up to and including the line ending the section.
      let started = this.sawStatusLine || inTrailers; // leading empty lines don't end a head
      let lineStart = pos;
      let end = pos;
      for (;;) {
        const lf = data.indexOf(LF, lineStart);
        if (lf === -1) break;
        end = lf + 1;
        if (end - pos > budget) throw this.overflow(inTrailers);
        if (lf === lineStart + 1 && data[lineStart] === CR) {
          if (started) break;
        } else {
          started = true;
        }
        lineStart = end;
      }
      if (end === pos) return this.stashPartialLine(data, pos, len, inTrailers);
      this.sectionBytes += end - pos;
      const text = (data as Latin1Buffer).latin1Slice(pos, end);
      pos = end;
      this.processLines(text);
      // Either the section ended or an unfinished line remains: the loop handles both.
      if (this.ended) return pos;
    }
    return pos;
  }

  /** Keep the bytes of an unfinished line, failing now if the section is already too big. */
  private stashPartialLine(data: Buffer, pos: number, len: number, inTrailers: boolean): number {
    if (this.sectionBytes + this.pendLen + (len - pos) > this.maxHeaderSize) throw this.overflow(inTrailers);
    // A continuation line with nothing to continue is fatal whatever follows: say so now rather
    // than when (if ever) its LF arrives.
    if (this.pendLen === 0 && this.lastName === undefined && (this.sawStatusLine || inTrailers)) {
      const c0 = data[pos];
      if (c0 === SP || c0 === HTAB) throw this.orphanFold();
    }
    this.appendPending(data, pos, len);
    return len;
  }

  /** Complete lines, each ending in LF; every line must end in CRLF. */
  private processLines(text: string): void {
    const n = text.length;
    let p = 0;
    while (p < n) {
      const lf = text.indexOf('\n', p);
      if (lf === p || text.charCodeAt(lf - 1) !== CR)
        throw parseError('bare LF in response head (CRLF required)');
      this.processLine(text, p, lf - 1);
      p = lf + 1;
    }
  }

  private appendPending(data: Buffer, start: number, end: number): void {
    const need = this.pendLen + (end - start);
    let buf = this.pend;
    if (buf === undefined || buf.length < need) {
      const grown = allocKept(Math.max(need, buf === undefined ? 256 : buf.length * 2));
      if (buf !== undefined && this.pendLen > 0) buf.copy(grown, 0, 0, this.pendLen);
      this.pend = buf = grown;
    }
    data.copy(buf, this.pendLen, start, end);
    this.pendLen = need;
  }

  private overflow(inTrailers: boolean): HeadersOverflowError {
    return new HeadersOverflowError(
      `response ${inTrailers ? 'trailer section' : 'head'} exceeds maxHeaderSize (${this.maxHeaderSize} bytes)`,
    );
  }

  /** One line without its CRLF: text[start, end). text[end] is the CR. */
  private processLine(text: string, start: number, end: number): void {
    if (!this.inTrailers && !this.sawStatusLine) {
      // Empty lines before the status line are tolerated (RFC 9112 §2.2 allows this for requests;
      // llhttp does it for responses, and a stray CRLF after a previous body is common).
      if (start === end) return;
      this.parseStatusLine(text, start, end);
      return;
    }
    if (start === end) {
      // The scan in read() stops at this line, so it is the last of its text.
      this.ended = true;
      return;
    }
    const c0 = text.charCodeAt(start);
    if (c0 === SP || c0 === HTAB) {
      this.obsFold(text, start, end);
      return;
    }
    this.parseField(text, start, end);
  }

  private parseStatusLine(text: string, s: number, e: number): void {
    // "HTTP/1.x SP DDD" is 12 bytes; then either end of line or SP + reason.
    if (
      e - s < 12 ||
      text.charCodeAt(s) !== 0x48 || // H
      text.charCodeAt(s + 1) !== 0x54 || // T
      text.charCodeAt(s + 2) !== 0x54 || // T
      text.charCodeAt(s + 3) !== 0x50 || // P
      text.charCodeAt(s + 4) !== 0x2f || // /
      text.charCodeAt(s + 5) !== 0x31 || // 1
      text.charCodeAt(s + 6) !== 0x2e || // .
      (text.charCodeAt(s + 7) !== 0x30 && text.charCodeAt(s + 7) !== 0x31) ||
      text.charCodeAt(s + 8) !== SP
    ) {
      throw parseError(`invalid status line: ${describe(text, s, e)}`);
    }
    const d0 = text.charCodeAt(s + 9) - 0x30;
    const d1 = text.charCodeAt(s + 10) - 0x30;
    const d2 = text.charCodeAt(s + 11) - 0x30;
    if (d0 < 1 || d0 > 9 || d1 < 0 || d1 > 9 || d2 < 0 || d2 > 9) {
      throw parseError(`invalid status code in status line: ${describe(text, s, e)}`);
    }
    let reason = '';
    if (e - s > 12) {
      if (text.charCodeAt(s + 12) !== SP) throw parseError(`invalid status line: ${describe(text, s, e)}`);
      // reason-phrase = *( HTAB / SP / VCHAR / obs-text ): anything but other control bytes.
      for (let i = s + 13; i < e; i++) {
        const c = text.charCodeAt(i);
        if ((c < 0x20 && c !== HTAB) || c === 0x7f) {
          throw parseError(`invalid character 0x${c.toString(16)} in status line reason phrase`);
        }
      }
      reason = text.slice(s + 13, e);
    }
    this.httpMinor = text.charCodeAt(s + 7) - 0x30;
    this.statusCode = d0 * 100 + d1 * 10 + d2;
    this.statusText = reason;
    this.sawStatusLine = true;
    this.fields = {};
  }

  private parseField(text: string, s: number, e: number): void {
    let i = s;
    let hasUpper = false;
    for (; i < e; i++) {
      const c = text.charCodeAt(i);
      if (c === 0x3a) break; // ':'
      if (TCHAR[c] === 0) {
        throw parseError(
          c === SP || c === HTAB
            ? `whitespace in or after header field name: ${describe(text, s, e)}`
            : `invalid character 0x${c.toString(16)} in header field name`,
        );
      }
      if (c <= 0x5a && c >= 0x41) hasUpper = true;
    }
    if (i === e) throw parseError(`header line without a colon: ${describe(text, s, e)}`);
    if (i === s) throw parseError('empty header field name');
    if (++this.fieldCount > this.maxHeaderCount) {
      throw new HeadersOverflowError(
        `response ${this.inTrailers ? 'trailer section' : 'head'} has more than maxHeaderCount (${this.maxHeaderCount}) fields`,
      );
    }
    // Common names come back as interned constants: no slice, no toLowerCase, and a faster
    // property store below (V8 must otherwise internalize the fresh string to use it as a key).
    let name = knownName(text, s, i);
    if (name === undefined) {
      name = text.slice(s, i);
      if (hasUpper) name = name.toLowerCase();
    }

    const value = fieldValue(text, i + 1, e, name);

    let target = this.fields;
    if (target === undefined) {
      // Trailers are created only when the first trailer field arrives.
      target = this.fields = {};
    }
    addField(target, name, value);
    this.lastName = name;
  }

  private orphanFold(): ParseError {
    return parseError('header line starts with whitespace but there is no field to continue');
  }

  /** RFC 9112 §5.2: a user agent replaces each obs-fold with SP before interpreting the value. */
  private obsFold(text: string, s: number, e: number): void {
    const name = this.lastName;
    const target = this.fields;
    if (name === undefined || target === undefined) throw this.orphanFold();
    const more = fieldValue(text, s, e, name);
    if (more === '') return; // a whitespace-only continuation adds nothing once OWS is trimmed
    const prev = getOwn(target, name)!;
    if (typeof prev === 'string') {
      setOwn(target, name, prev === '' ? more : `${prev} ${more}`);
    } else {
      const last = prev[prev.length - 1];
      prev[prev.length - 1] = last === '' ? more : `${last} ${more}`;
    }
  }
}

/**
 * A field value between s and e: leading and trailing OWS trimmed, control bytes refused, in one pass
 * (it remembers the last byte that is not OWS).
 */
function fieldValue(text: string, s: number, e: number, name: string): string {
  let vs = s;
  while (vs < e && (text.charCodeAt(vs) === SP || text.charCodeAt(vs) === HTAB)) vs++;
  let ve = vs;
  for (let j = vs; j < e; j++) {
    const c = text.charCodeAt(j);
    if (c === SP || c === HTAB) continue;
    if (c < 0x20 || c === 0x7f) throw parseError(`invalid character 0x${c.toString(16)} in header ${name}`);
    ve = j + 1;
  }
  return ve === vs ? '' : text.slice(vs, ve);
}

/**
 * The position after the first CRLFCRLF in data[pos, limit), or -1. A loop here rather than a native
 * search: a head is short, and the call into C++ costs more than the bytes (a 100-byte head: 1 µs
 * less than Buffer#indexOf at C=1, where nothing is in cache).
 */
function endOfSection(data: Buffer, pos: number, limit: number): number {
  for (let i = pos + 3; i < limit; i++) {
    if (data[i] === LF && data[i - 1] === CR && data[i - 2] === LF && data[i - 3] === CR) return i + 1;
  }
  return -1;
}
