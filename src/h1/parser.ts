/**
 * Incremental HTTP/1.1 response parser (client side, RFC 9112).
 *
 * Shape: the connection arms the parser with expect() once per request, then feeds socket chunks to
 * execute(). Head and trailer lines are located with Buffer#indexOf(LF) (native memchr), the complete
 * lines available are decoded with a single latin1Slice (one native call instead of two per field,
 * which dominated the profile), and each line is validated and split in one charCodeAt pass; common
 * field names come back as interned lowercase constants. Only an unfinished line is kept between
 * execute() calls (in a small reusable buffer, bounded by maxHeaderSize), never the socket buffer.
 * Body bytes are handed out as subarray()s of the caller's buffer and are never decoded or copied.
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
 * - Transfer-Encoding together with Content-Length: per RFC 9112 §6.3 the Transfer-Encoding wins and
 *   the connection must not be reused afterwards (reported through onComplete's `reusable`).
 * - Transfer-Encoding naming chunked more than once (in one field or across several) is a ParseError:
 *   RFC 9112 §6.1 forbids applying it twice, and reading such a body until close would hand out its
 *   chunk framing, and whatever followed, as content.
 *
 * Error model: any malformed input throws (ParseError, HeadersOverflowError, UnsupportedError) and the
 * parser is dead from then on; the connection destroys its socket. Callbacks run synchronously inside
 * execute()/finish(); exceptions from them propagate unchanged.
 */
import { HeadersOverflowError, ParseError, SocketClosedError, UnsupportedError } from '../errors.js';
import { type IncomingHeaders, addField, getOwn, setOwn } from '../headers.js';
import { allocKept } from '../kept-buffer.js';

export interface ResponseHead {
  statusCode: number;
  statusText: string;
  httpVersion: '1.0' | '1.1';
  headers: IncomingHeaders;
  keepAlive: boolean;
  keepAliveTimeoutMs: number | undefined;
  keepAliveMax: number | undefined;
}

export interface ResponseParserHandler {
  onInformation(head: ResponseHead): void;
  onHead(head: ResponseHead): void;
  onBody(chunk: Buffer): void;
  onComplete(trailers: IncomingHeaders | undefined, reusable: boolean): void;
}

export interface ParserLimits {
  /** The whole head (status line, fields, CRLFs) in bytes; also applies to the trailer section. */
  maxHeaderSize?: number;
  /** Number of field lines in the head (and, separately, in the trailer section). */
  maxHeaderCount?: number;
}

export const DEFAULT_MAX_HEADER_SIZE = 65536;
export const DEFAULT_MAX_HEADER_COUNT = 128;

/**
 * A chunk-size line (size plus extensions) longer than this is refused. Extensions carry nothing a
 * client uses; without a bound a server could make us scan forever (cf. Node's CVE-2024-22019 fix).
 */
const MAX_CHUNK_LINE = 16384;

// Buffer's native latin1 decoder without toString()'s argument juggling. Present on every Node
// Buffer but not in @types/node.
interface Latin1Buffer extends Buffer {
  latin1Slice(start: number, end: number): string;
}

// Parser states. Plain numbers (not a TS enum object) so the switch compiles to integer compares.
const S_IDLE = 0; // not armed: no response owed
const S_HEAD = 1; // reading status line / header lines
const S_BODY_LENGTH = 2; // Content-Length body
const S_BODY_CLOSE = 3; // body delimited by the connection's close
const S_CHUNK_SIZE_START = 4; // first hex digit of a chunk size
const S_CHUNK_SIZE = 5;
const S_CHUNK_SIZE_WS = 6; // BWS after the size: only ';' may follow
const S_CHUNK_EXT_NAME_START = 7;
const S_CHUNK_EXT_NAME = 8;
const S_CHUNK_EXT_AFTER_NAME = 9;
const S_CHUNK_EXT_VALUE_START = 10;
const S_CHUNK_EXT_VALUE_TOKEN = 11;
const S_CHUNK_EXT_QUOTED = 12;
const S_CHUNK_EXT_QUOTED_ESCAPE = 13;
const S_CHUNK_EXT_AFTER_VALUE = 14;
const S_CHUNK_SIZE_LF = 15;
const S_CHUNK_DATA = 16;
const S_CHUNK_DATA_CR = 17;
const S_CHUNK_DATA_LF = 18;
const S_TRAILERS = 19; // trailer field lines after the last chunk
const S_COMPLETE = 20; // message ended; execute() emits onComplete and returns
const S_DEAD = 21; // threw once; unusable

const CR = 13;
const LF = 10;
const SP = 32;
const HTAB = 9;

/** RFC 9110 tchar: "!#$%&'*+-.^_`|~" / DIGIT / ALPHA. */
export const TCHAR: Uint8Array = /* @__PURE__ */ (() => {
  const t = new Uint8Array(256);
  for (let c = 0x30; c <= 0x39; c++) t[c] = 1;
  for (let c = 0x41; c <= 0x5a; c++) t[c] = 1;
  for (let c = 0x61; c <= 0x7a; c++) t[c] = 1;
  for (const ch of "!#$%&'*+-.^_`|~") t[ch.charCodeAt(0)] = 1;
  return t;
})();

/** Hex digit value + 1 (0 = not a hex digit), so one table lookup both tests and converts. */
const HEX: Uint8Array = /* @__PURE__ */ (() => {
  const t = new Uint8Array(256);
  for (let i = 0; i < 10; i++) t[0x30 + i] = i + 1;
  for (let i = 0; i < 6; i++) {
    t[0x41 + i] = i + 11;
    t[0x61 + i] = i + 11;
  }
  return t;
})();

// The largest value v such that v * 16 + 15 stays a safe integer: chunk sizes beyond 2^53 are refused.
const MAX_CHUNK_SIZE_BEFORE_SHIFT = Math.floor((Number.MAX_SAFE_INTEGER - 15) / 16);

function parseError(message: string): ParseError {
  return new ParseError(message);
}

export class ResponseParser {
  private readonly handler: ResponseParserHandler;
  private readonly maxHeaderSize: number;
  private readonly maxHeaderCount: number;

  private state = S_IDLE;
  private isHead = false;
  private _receivedAny = false;

  // Head / trailer section being read.
  private sawStatusLine = false;
  private sectionBytes = 0; // bytes of the current head or trailer section so far
  private fieldCount = 0;
  private fields: IncomingHeaders | undefined = undefined; // headers, or trailers once in S_TRAILERS
  private lastName: string | undefined = undefined; // for obs-fold
  private statusCode = 0;
  private statusText = '';
  private httpMinor = 1;
  private informationalSeen = false;

  // The unfinished line carried between execute() calls.
  private pend: Buffer | undefined = undefined;
  private pendLen = 0;

  // Body framing.
  private bodyRemaining = 0; // Content-Length bytes left, or bytes left in the current chunk
  private bodyTotal = 0; // Content-Length, for the "closed after N of M" message
  private bodyReceived = 0; // decoded body bytes handed out so far
  private chunkSize = 0;
  private chunkLineBytes = 0;
  private trailers: IncomingHeaders | undefined = undefined;
  private reusable = true;

  constructor(handler: ResponseParserHandler, limits?: ParserLimits) {
    this.handler = handler;
    this.maxHeaderSize = limits?.maxHeaderSize ?? DEFAULT_MAX_HEADER_SIZE;
    this.maxHeaderCount = limits?.maxHeaderCount ?? DEFAULT_MAX_HEADER_COUNT;
  }

  /** true between expect() and the final onComplete (a response is owed or in progress). */
  get busy(): boolean {
    return this.state !== S_IDLE && this.state !== S_DEAD;
  }

  /** true once any byte of the current response (including 1xx) has been received since expect(). */
  get receivedAny(): boolean {
    return this._receivedAny;
  }

  /**
   * Inside onHead: the body's exact length when its framing gives one (Content-Length, or 0 when
   * there is no body), else -1 (chunked, or delimited by the close).
   */
  get bodyLength(): number {
    return this.state === S_BODY_LENGTH ? this.bodyTotal : this.state === S_COMPLETE ? 0 : -1;
  }

  /**
   * Arm for the response to one request. Resets all per-message state. A dead parser stays dead:
   * after a parse error the byte stream has no trustworthy message boundary left.
   */
  expect(isHead: boolean): void {
    if (this.state === S_DEAD) throw parseError('the response parser failed earlier and cannot be reused');
    this.state = S_HEAD;
    this.isHead = isHead;
    this._receivedAny = false;
    this.informationalSeen = false;
    this.resetSection();
    this.bodyRemaining = 0;
    this.bodyTotal = 0;
    this.bodyReceived = 0;
    this.chunkSize = 0;
    this.chunkLineBytes = 0;
    this.trailers = undefined;
    this.reusable = true;
  }

  /**
   * Feed bytes. Returns how many were consumed; when a message completes (onComplete was called) it
   * returns at once, and data.length - result bytes are left over (unsolicited as far as this
   * response is concerned).
   */
  execute(data: Buffer): number {
    if (this.state === S_DEAD) throw parseError('the response parser failed earlier and cannot be reused');
    if (this.state === S_IDLE) return 0;
    const len = data.length;
    if (len === 0) return 0;
    this._receivedAny = true;
    let pos = 0;
    try {
      while (pos < len) {
        switch (this.state) {
          case S_HEAD:
          case S_TRAILERS:
            pos = this.readLines(data as Latin1Buffer, pos, len);
            break;
          case S_BODY_LENGTH: {
            const n = Math.min(this.bodyRemaining, len - pos);
            this.bodyRemaining -= n;
            this.bodyReceived += n;
            if (this.bodyRemaining === 0) this.state = S_COMPLETE;
            this.handler.onBody(data.subarray(pos, pos + n));
            pos += n;
            break;
          }
          case S_BODY_CLOSE:
            this.bodyReceived += len - pos;
            this.handler.onBody(pos === 0 ? data : data.subarray(pos));
            pos = len;
            break;
          case S_CHUNK_DATA: {
            const n = Math.min(this.bodyRemaining, len - pos);
            this.bodyRemaining -= n;
            this.bodyReceived += n;
            if (this.bodyRemaining === 0) this.state = S_CHUNK_DATA_CR;
            this.handler.onBody(data.subarray(pos, pos + n));
            pos += n;
            break;
          }
          default:
            pos = this.readChunkFraming(data, pos, len);
        }
        if (this.state === S_COMPLETE) return this.emitComplete(pos);
      }
    } catch (err) {
      // Whatever threw (bad input, or the handler itself), the stream position is now unknown.
      this.state = S_DEAD;
      throw err;
    }
    return pos;
  }

  /**
   * The peer closed the connection. Completes a close-delimited body; if a message was cut short,
   * throws SocketClosedError saying what was missing; if nothing of the response arrived, does nothing.
   */
  finish(): void {
    const state = this.state;
    if (state === S_IDLE || state === S_DEAD) return;
    if (state === S_BODY_CLOSE) {
      this.state = S_IDLE;
      this.handler.onComplete(undefined, false);
      return;
    }
    if (state === S_HEAD && !this._receivedAny) return;
    this.state = S_DEAD;
    let what: string;
    if (state === S_HEAD) {
      what = this.informationalSeen
        ? 'connection closed after an informational (1xx) response, before the final response head'
        : 'connection closed before the response head was complete';
    } else if (state === S_BODY_LENGTH) {
      what = `connection closed after ${this.bodyReceived} of ${this.bodyTotal} body bytes`;
    } else if (state === S_TRAILERS) {
      what = `connection closed in the trailer section of a chunked body (after ${this.bodyReceived} body bytes)`;
    } else {
      what = `connection closed in the middle of a chunked body (after ${this.bodyReceived} body bytes)`;
    }
    throw new SocketClosedError(what);
  }

  // ---------------------------------------------------------------------------------------------

  private emitComplete(pos: number): number {
    const trailers = this.trailers;
    const reusable = this.reusable;
    this.trailers = undefined;
    this.fields = undefined;
    this.state = S_IDLE;
    // Last thing we do: the handler may call expect() for the next request from in here.
    this.handler.onComplete(trailers, reusable);
    return pos;
  }

  private resetSection(): void {
    this.sawStatusLine = false;
    this.sectionBytes = 0;
    this.fieldCount = 0;
    this.fields = undefined;
    this.lastName = undefined;
    this.pendLen = 0;
  }

  /**
   * Head or trailer lines. Returns the position after the last complete line handled.
   *
   * Decoding is the expensive part (each latin1Slice is a native call costing more than parsing a
   * short line), so the complete lines available are found first, with the byte budget enforced as
   * they are found, then decoded with ONE latin1Slice and cut up with String#slice. The scan stops at
   * the empty line ending the section, so body bytes are never decoded.
   */
  private readLines(data: Latin1Buffer, pos: number, len: number): number {
    const inTrailers = this.state === S_TRAILERS;
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
        if (this.state !== S_HEAD && this.state !== S_TRAILERS) return pos;
        continue;
      }

      // Find the complete lines in data[pos, ...), up to and including the line ending the section.
      const budget = this.maxHeaderSize - this.sectionBytes;
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
      const text = data.latin1Slice(pos, end);
      pos = end;
      this.processLines(text);
      // Either the section ended (body, complete, or a 1xx was reported and the next head follows)
      // or an unfinished line remains: the loop handles both.
      if (this.state !== S_HEAD && this.state !== S_TRAILERS) return pos;
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
    if (this.state === S_HEAD && !this.sawStatusLine) {
      // Empty lines before the status line are tolerated (RFC 9112 §2.2 allows this for requests;
      // llhttp does it for responses, and a stray CRLF after a previous body is common).
      if (start === end) return;
      this.parseStatusLine(text, start, end);
      return;
    }
    if (start === end) {
      if (this.state === S_HEAD) this.endOfHead();
      else this.state = S_COMPLETE; // end of trailer section
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
        `response ${this.state === S_TRAILERS ? 'trailer section' : 'head'} has more than maxHeaderCount (${this.maxHeaderCount}) fields`,
      );
    }
    // Common names come back as interned constants: no slice, no toLowerCase, and a faster
    // property store below (V8 must otherwise internalize the fresh string to use it as a key).
    let name = knownName(text, s, i);
    if (name === undefined) {
      name = text.slice(s, i);
      if (hasUpper) name = name.toLowerCase();
    }

    // Value: skip leading OWS, remember the last non-OWS byte, refuse control bytes, in one pass.
    let vs = i + 1;
    while (vs < e && (text.charCodeAt(vs) === SP || text.charCodeAt(vs) === HTAB)) vs++;
    let ve = vs;
    for (let j = vs; j < e; j++) {
      const c = text.charCodeAt(j);
      if (c === SP || c === HTAB) continue;
      if (c < 0x20 || c === 0x7f) throw parseError(`invalid character 0x${c.toString(16)} in header ${name}`);
      ve = j + 1;
    }
    const value = ve === vs ? '' : text.slice(vs, ve);

    let target = this.fields;
    if (target === undefined) {
      // Trailers are created only when the first trailer field arrives.
      target = this.fields = {};
      this.trailers = target;
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
    let vs = s;
    while (vs < e && (text.charCodeAt(vs) === SP || text.charCodeAt(vs) === HTAB)) vs++;
    let ve = vs;
    for (let j = vs; j < e; j++) {
      const c = text.charCodeAt(j);
      if (c === SP || c === HTAB) continue;
      if (c < 0x20 || c === 0x7f) throw parseError(`invalid character 0x${c.toString(16)} in header ${name}`);
      ve = j + 1;
    }
    if (ve === vs) return; // a whitespace-only continuation adds nothing once OWS is trimmed
    const more = text.slice(vs, ve);
    const prev = getOwn(target, name)!;
    if (typeof prev === 'string') {
      setOwn(target, name, prev === '' ? more : `${prev} ${more}`);
    } else {
      const last = prev[prev.length - 1];
      prev[prev.length - 1] = last === '' ? more : `${last} ${more}`;
    }
  }

  /** The blank line after the head: decide informational vs final, and the body framing (§6.3). */
  private endOfHead(): void {
    const status = this.statusCode;
    const headers = this.fields!;
    const minor = this.httpMinor;

    // Persistence (RFC 9112 §9.3): 1.1 persists unless "close"; 1.0 only with "keep-alive".
    const connection = headers.connection;
    let keepAlive: boolean;
    if (connection === undefined) keepAlive = minor === 1;
    else if (hasToken(connection, 'close')) keepAlive = false;
    else keepAlive = minor === 1 || hasToken(connection, 'keep-alive');

    let kaTimeout: number | undefined;
    let kaMax: number | undefined;
    const ka = headers['keep-alive'];
    if (ka !== undefined) {
      const s = typeof ka === 'string' ? ka : ka.join(',');
      const t = keepAliveParam(s, 'timeout');
      if (t !== undefined) kaTimeout = t * 1000;
      kaMax = keepAliveParam(s, 'max');
    }

    const head: ResponseHead = {
      statusCode: status,
      statusText: this.statusText,
      httpVersion: minor === 1 ? '1.1' : '1.0',
      headers,
      keepAlive,
      keepAliveTimeoutMs: kaTimeout,
      keepAliveMax: kaMax,
    };

    if (status < 200) {
      if (status === 101) throw new UnsupportedError('101 Switching Protocols is not supported');
      // Interim response: no body; the final response follows on the same stream.
      this.resetSection();
      this.informationalSeen = true;
      this.handler.onInformation(head);
      return;
    }

    const te = headers['transfer-encoding'];
    const cl = headers['content-length'];
    let reusable = keepAlive;
    // §6.3 item 3: TE and CL together may be an attempt at response splitting; TE wins and the
    // connection is closed afterwards. §6.1: TE in an HTTP/1.0 message means the framing is faulty.
    if (te !== undefined && (cl !== undefined || minor === 0)) reusable = false;

    let next: number;
    if (this.isHead || status === 204 || status === 304) {
      // No body whatever the framing headers say; a malformed Content-Length is still refused
      // because it shows the peer's framing cannot be trusted.
      if (te === undefined && cl !== undefined) parseContentLength(cl);
      next = S_COMPLETE;
    } else if (te !== undefined) {
      if (isChunkedFinal(te)) {
        next = S_CHUNK_SIZE_START;
        this.chunkLineBytes = 0;
      } else {
        // §6.3 item 4: chunked is not the final coding → the body runs until the server closes.
        next = S_BODY_CLOSE;
        reusable = false;
      }
    } else if (cl !== undefined) {
      const n = parseContentLength(cl);
      this.bodyRemaining = n;
      this.bodyTotal = n;
      next = n === 0 ? S_COMPLETE : S_BODY_LENGTH;
    } else {
      next = S_BODY_CLOSE;
      reusable = false;
    }
    this.reusable = reusable;
    this.fields = undefined;
    this.lastName = undefined;
    this.state = next;
    this.handler.onHead(head);
  }

  /** Chunk-size lines (with extensions) and the CRLF after chunk data, one byte at a time. */
  private readChunkFraming(data: Buffer, pos: number, len: number): number {
    let st = this.state;
    let lineBytes = this.chunkLineBytes;
    for (; pos < len; pos++) {
      const c = data[pos];
      switch (st) {
        case S_CHUNK_DATA_CR:
          if (c !== CR) throw parseError('expected CRLF after chunk data');
          st = S_CHUNK_DATA_LF;
          continue;
        case S_CHUNK_DATA_LF:
          if (c !== LF) throw parseError('expected CRLF after chunk data');
          st = S_CHUNK_SIZE_START;
          lineBytes = 0;
          continue;
        case S_CHUNK_SIZE_START: {
          const h = HEX[c];
          if (h === 0) throw parseError(`invalid character 0x${c.toString(16)} in chunk size`);
          this.chunkSize = h - 1;
          st = S_CHUNK_SIZE;
          break;
        }
        case S_CHUNK_SIZE: {
          const h = HEX[c];
          if (h !== 0) {
            if (this.chunkSize > MAX_CHUNK_SIZE_BEFORE_SHIFT) throw parseError('chunk size too large');
            this.chunkSize = this.chunkSize * 16 + h - 1;
          } else if (c === CR) st = S_CHUNK_SIZE_LF;
          else if (c === 0x3b) st = S_CHUNK_EXT_NAME_START;
          else if (c === SP || c === HTAB) st = S_CHUNK_SIZE_WS;
          else throw parseError(`invalid character 0x${c.toString(16)} in chunk size`);
          break;
        }
        case S_CHUNK_SIZE_WS:
          // BWS is allowed only before a ';' (RFC 9112 §7.1.1); "25  \r\n" is refused as by llhttp.
          if (c === 0x3b) st = S_CHUNK_EXT_NAME_START;
          else if (c !== SP && c !== HTAB)
            throw parseError(`invalid character 0x${c.toString(16)} in chunk size`);
          break;
        case S_CHUNK_EXT_NAME_START:
          if (TCHAR[c] === 1) st = S_CHUNK_EXT_NAME;
          else if (c !== SP && c !== HTAB) throw parseError('invalid chunk extension');
          break;
        case S_CHUNK_EXT_NAME:
          if (TCHAR[c] === 1) break;
          if (c === CR) st = S_CHUNK_SIZE_LF;
          else if (c === 0x3b) st = S_CHUNK_EXT_NAME_START;
          else if (c === 0x3d) st = S_CHUNK_EXT_VALUE_START;
          else if (c === SP || c === HTAB) st = S_CHUNK_EXT_AFTER_NAME;
          else throw parseError('invalid chunk extension');
          break;
        case S_CHUNK_EXT_AFTER_NAME:
          if (c === CR) st = S_CHUNK_SIZE_LF;
          else if (c === 0x3b) st = S_CHUNK_EXT_NAME_START;
          else if (c === 0x3d) st = S_CHUNK_EXT_VALUE_START;
          else if (c !== SP && c !== HTAB) throw parseError('invalid chunk extension');
          break;
        case S_CHUNK_EXT_VALUE_START:
          if (c === 0x22) st = S_CHUNK_EXT_QUOTED;
          else if (TCHAR[c] === 1) st = S_CHUNK_EXT_VALUE_TOKEN;
          else if (c !== SP && c !== HTAB) throw parseError('invalid chunk extension value');
          break;
        case S_CHUNK_EXT_VALUE_TOKEN:
          if (TCHAR[c] === 1) break;
          if (c === CR) st = S_CHUNK_SIZE_LF;
          else if (c === 0x3b) st = S_CHUNK_EXT_NAME_START;
          else if (c === SP || c === HTAB) st = S_CHUNK_EXT_AFTER_VALUE;
          else throw parseError('invalid chunk extension value');
          break;
        case S_CHUNK_EXT_QUOTED:
          // qdtext = HTAB / SP / %x21 / %x23-5B / %x5D-7E / obs-text
          if (c === 0x22) st = S_CHUNK_EXT_AFTER_VALUE;
          else if (c === 0x5c) st = S_CHUNK_EXT_QUOTED_ESCAPE;
          else if ((c < 0x20 && c !== HTAB) || c === 0x7f) {
            throw parseError('invalid character in quoted chunk extension value');
          }
          break;
        case S_CHUNK_EXT_QUOTED_ESCAPE:
          if ((c < 0x20 && c !== HTAB) || c === 0x7f) {
            throw parseError('invalid character in quoted chunk extension value');
          }
          st = S_CHUNK_EXT_QUOTED;
          break;
        case S_CHUNK_EXT_AFTER_VALUE:
          if (c === CR) st = S_CHUNK_SIZE_LF;
          else if (c === 0x3b) st = S_CHUNK_EXT_NAME_START;
          else if (c !== SP && c !== HTAB) throw parseError('invalid chunk extension');
          break;
        case S_CHUNK_SIZE_LF:
          if (c !== LF) throw parseError('expected LF after CR in chunk size line');
          this.chunkLineBytes = 0;
          if (this.chunkSize === 0) {
            // last-chunk: the trailer section follows, read with the same line machinery as the head.
            this.state = S_TRAILERS;
            this.sectionBytes = 0;
            this.fieldCount = 0;
            this.fields = undefined;
            this.lastName = undefined;
            this.pendLen = 0;
          } else {
            this.state = S_CHUNK_DATA;
            this.bodyRemaining = this.chunkSize;
          }
          return pos + 1;
      }
      // Only size-line states reach here (data CRLF states `continue`): bound the line length.
      if (++lineBytes > MAX_CHUNK_LINE) throw parseError('chunk size line too long');
    }
    this.state = st;
    this.chunkLineBytes = lineBytes;
    return pos;
  }
}

// -----------------------------------------------------------------------------------------------

/** Short printable excerpt of a bad line for error messages (bounded, control bytes escaped). */
function describe(text: string, s: number, e: number): string {
  const part = text.slice(s, Math.min(e, s + 64));
  return JSON.stringify(e - s > 64 ? `${part}...` : part);
}

/**
 * Field names seen in most responses, by length. Only [a-z0-9-] may appear in them: then, for input
 * already checked to be tchar, `byte | 0x20` equals the candidate's byte exactly when the two match
 * case-insensitively.
 */
const KNOWN_NAMES: (string[] | undefined)[] = /* @__PURE__ */ (() => {
  const names = [
    'age',
    'via',
    'date',
    'etag',
    'link',
    'vary',
    'server',
    'pragma',
    'expires',
    'alt-svc',
    'trailer',
    'upgrade',
    'location',
    'connection',
    'keep-alive',
    'set-cookie',
    'x-request-id',
    'content-type',
    'x-powered-by',
    'retry-after',
    'cache-control',
    'content-range',
    'accept-ranges',
    'last-modified',
    'content-length',
    'content-encoding',
    'content-language',
    'x-frame-options',
    'www-authenticate',
    'transfer-encoding',
    'content-disposition',
    'x-content-type-options',
    'content-security-policy',
    'strict-transport-security',
    'access-control-allow-origin',
    'access-control-allow-credentials',
    'access-control-expose-headers',
  ];
  const table: (string[] | undefined)[] = [];
  for (const n of names) {
    const list = table[n.length];
    if (list === undefined) table[n.length] = [n];
    else list.push(n);
  }
  return table;
})();

function knownName(text: string, s: number, e: number): string | undefined {
  const candidates = KNOWN_NAMES[e - s];
  if (candidates === undefined) return undefined;
  for (let k = 0; k < candidates.length; k++) {
    const cand = candidates[k];
    let j = 0;
    while (j < cand.length && (text.charCodeAt(s + j) | 0x20) === cand.charCodeAt(j)) j++;
    if (j === cand.length) return cand;
  }
  return undefined;
}

/** Whether a comma-separated list header (one field or several) contains `token`, case-insensitively. */
function hasToken(value: string | string[], token: string): boolean {
  if (typeof value !== 'string') {
    for (let i = 0; i < value.length; i++) if (hasToken(value[i], token)) return true;
    return false;
  }
  if (value.length === token.length) return value.toLowerCase() === token;
  const v = value.toLowerCase();
  let from = 0;
  while (from <= v.length) {
    let comma = v.indexOf(',', from);
    if (comma === -1) comma = v.length;
    let s = from;
    let e = comma;
    while (s < e && (v.charCodeAt(s) === SP || v.charCodeAt(s) === HTAB)) s++;
    while (e > s && (v.charCodeAt(e - 1) === SP || v.charCodeAt(e - 1) === HTAB)) e--;
    if (e - s === token.length && v.startsWith(token, s)) return true;
    from = comma + 1;
  }
  return false;
}

/**
 * RFC 9112 §6.3: chunked framing applies only when chunked is the final transfer coding; otherwise
 * (`chunked, gzip`, `identity`) the body runs until the server closes. A coding list naming chunked
 * more than once is invalid (§6.1: a sender must not apply chunked twice): neither reading it as
 * chunked nor until close can be trusted to find where the response ends, so it is a ParseError.
 */
function isChunkedFinal(te: string | string[]): boolean {
  if (typeof te === 'string' && te.length === 7 && te.toLowerCase() === 'chunked') return true;
  const list = typeof te === 'string' ? te : te.join(',');
  let chunkedCount = 0;
  let last = '';
  for (const part of list.split(',')) {
    const coding = part.trim().toLowerCase();
    if (coding === '') continue; // empty list elements are ignored (RFC 9110 §5.6.1)
    if (coding === 'chunked') chunkedCount++;
    last = coding;
  }
  if (chunkedCount > 1) {
    throw parseError(`Transfer-Encoding applies chunked ${chunkedCount} times (RFC 9112 §6.1 allows once)`);
  }
  return last === 'chunked';
}

/**
 * Content-Length = 1*DIGIT. Several fields, or a comma list, are accepted only if every value is the
 * same (RFC 9110 §8.6); anything else is a ParseError, as is a length beyond 2^53 - 1.
 */
function parseContentLength(cl: string | string[]): number {
  if (typeof cl === 'string') {
    const n = parseDigits(cl, 0, cl.length);
    if (n >= 0) return n;
  }
  const list = typeof cl === 'string' ? cl : cl.join(',');
  let result = -1;
  for (const part of list.split(',')) {
    const v = part.trim();
    const n = parseDigits(v, 0, v.length);
    if (n < 0) throw parseError(`invalid Content-Length: ${JSON.stringify(list)}`);
    if (result !== -1 && n !== result)
      throw parseError(`conflicting Content-Length values: ${JSON.stringify(list)}`);
    result = n;
  }
  return result;
}

/** Decimal digits only → value; -1 if empty or not all digits; throws past Number.MAX_SAFE_INTEGER. */
function parseDigits(s: string, start: number, end: number): number {
  if (start === end) return -1;
  let n = 0;
  for (let i = start; i < end; i++) {
    const d = s.charCodeAt(i) - 0x30;
    if (d < 0 || d > 9) return -1;
    if (n > (Number.MAX_SAFE_INTEGER - d) / 10) throw parseError('Content-Length too large');
    n = n * 10 + d;
  }
  return n;
}

/**
 * One numeric parameter of `Keep-Alive: timeout=5, max=100` (names case-insensitive, spaces and
 * quotes tolerated, ',' or ';' between parameters). undefined when absent or not a plain number.
 */
function keepAliveParam(value: string, param: string): number | undefined {
  const v = value.toLowerCase();
  let from = 0;
  while (from < v.length) {
    let sep = from;
    while (sep < v.length && v.charCodeAt(sep) !== 0x2c && v.charCodeAt(sep) !== 0x3b) sep++;
    const eq = v.indexOf('=', from);
    if (eq !== -1 && eq < sep && v.slice(from, eq).trim() === param) {
      let raw = v.slice(eq + 1, sep).trim();
      if (raw.length >= 2 && raw.charCodeAt(0) === 0x22 && raw.charCodeAt(raw.length - 1) === 0x22) {
        raw = raw.slice(1, -1);
      }
      try {
        const n = parseDigits(raw, 0, raw.length);
        return n < 0 ? undefined : n;
      } catch {
        return undefined; // absurdly large: treat as absent rather than fail the response
      }
    }
    from = sep + 1;
  }
  return undefined;
}
