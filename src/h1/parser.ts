/**
 * Incremental HTTP/1.1 response parser (client side, RFC 9112): the message as a whole. It reads the
 * head with a HeadReader (head.ts), decides the body's framing (RFC 9112 §6.3), hands body bytes out,
 * reads a chunked body with a ChunkedDecoder (chunked.ts) and its trailers with the HeadReader again,
 * and reports the end of the message and whether the connection may be reused. The field values that
 * framing and persistence depend on are interpreted in fields.ts.
 *
 * Shape: the connection arms the parser with expect() once per request, then feeds socket chunks to
 * execute(). Body bytes are handed out as subarray()s of the caller's buffer and are never decoded or
 * copied.
 *
 * Deliberate strictness choices (a client may be strict where RFC 9112 allows leniency; those about
 * lines and fields are listed in head.ts, those about chunk framing in chunked.ts, those about
 * Transfer-Encoding and Content-Length values in fields.ts):
 * - Transfer-Encoding together with Content-Length: per RFC 9112 §6.3 the Transfer-Encoding wins and
 *   the connection must not be reused afterwards (reported through onComplete's `reusable`).
 *
 * Error model: any malformed input throws (ParseError, HeadersOverflowError, UnsupportedError) and the
 * parser is dead from then on; the connection destroys its socket. Callbacks run synchronously inside
 * execute()/finish(); exceptions from them propagate unchanged.
 */
import { SocketClosedError, UnsupportedError } from '../errors.js';
import type { IncomingHeaders } from '../headers.js';
import { ChunkedDecoder } from './chunked.js';
import * as fields from './fields.js';
import { parseError } from './fields.js';
import { HeadReader } from './head.js';

// Copied into module constants, which optimized code folds in, rather than read through their
// module cells at each use (see head.ts).
const hasToken = fields.hasToken;
const isChunkedFinal = fields.isChunkedFinal;
const keepAliveParam = fields.keepAliveParam;
const parseContentLength = fields.parseContentLength;

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
  /**
   * Body bytes: data[start, end). A range rather than a subarray, so that a body gathered into a
   * buffer of its own is copied straight from the read, with no view made per chunk.
   */
  onBody(data: Buffer, start: number, end: number): void;
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

// Parser states. Plain numbers (not a TS enum object) so the switch compiles to integer compares.
const S_IDLE = 0; // not armed: no response owed
const S_HEAD = 1; // reading status line / header lines
const S_BODY_LENGTH = 2; // Content-Length body
const S_BODY_CLOSE = 3; // body delimited by the connection's close
const S_CHUNKED = 4; // chunked body, up to the last-chunk line
const S_TRAILERS = 5; // trailer field lines after the last chunk
const S_COMPLETE = 6; // message ended; execute() emits onComplete and returns
const S_DEAD = 7; // threw once; unusable

export class ResponseParser {
  private readonly handler: ResponseParserHandler;
  private readonly head: HeadReader; // the head, then the trailer section
  private readonly chunked: ChunkedDecoder;

  private state = S_IDLE;
  private isHead = false;
  private _receivedAny = false;
  private informationalSeen = false;

  // Body framing.
  private bodyRemaining = 0; // Content-Length bytes left
  private bodyTotal = 0; // Content-Length, for the "closed after N of M" message
  private bodyReceived = 0; // Content-Length or close-delimited body bytes handed out so far
  private trailers: IncomingHeaders | undefined = undefined;
  private reusable = true;

  constructor(handler: ResponseParserHandler, limits?: ParserLimits) {
    this.handler = handler;
    this.head = new HeadReader(
      limits?.maxHeaderSize ?? DEFAULT_MAX_HEADER_SIZE,
      limits?.maxHeaderCount ?? DEFAULT_MAX_HEADER_COUNT,
    );
    this.chunked = new ChunkedDecoder(handler);
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
    this.head.startHead();
    this.bodyRemaining = 0;
    this.bodyTotal = 0;
    this.bodyReceived = 0;
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
            pos = this.head.read(data, pos, len);
            // Either a body, the end of the message, or after a 1xx the next head follows.
            if (this.head.ended) this.endOfHead();
            break;
          case S_BODY_LENGTH: {
            const n = Math.min(this.bodyRemaining, len - pos);
            this.bodyRemaining -= n;
            this.bodyReceived += n;
            if (this.bodyRemaining === 0) this.state = S_COMPLETE;
            this.handler.onBody(data, pos, pos + n);
            pos += n;
            break;
          }
          case S_BODY_CLOSE:
            this.bodyReceived += len - pos;
            this.handler.onBody(data, pos, len);
            pos = len;
            break;
          case S_CHUNKED:
            pos = this.chunked.execute(data, pos, len);
            if (this.chunked.lastChunkSeen) {
              // The trailer section follows, read with the same line machinery as the head.
              this.head.startTrailers();
              this.state = S_TRAILERS;
            }
            break;
          default: // S_TRAILERS
            pos = this.head.read(data, pos, len);
            if (this.head.ended) {
              this.trailers = this.head.fields;
              this.state = S_COMPLETE;
            }
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
      what = `connection closed in the trailer section of a chunked body (after ${this.chunked.received} body bytes)`;
    } else {
      what = `connection closed in the middle of a chunked body (after ${this.chunked.received} body bytes)`;
    }
    throw new SocketClosedError(what);
  }

  // ---------------------------------------------------------------------------------------------

  private emitComplete(pos: number): number {
    const trailers = this.trailers;
    const reusable = this.reusable;
    this.trailers = undefined;
    this.head.release();
    this.state = S_IDLE;
    // Last thing we do: the handler may call expect() for the next request from in here.
    this.handler.onComplete(trailers, reusable);
    return pos;
  }

  /** The blank line after the head: decide informational vs final, and the body framing (§6.3). */
  private endOfHead(): void {
    const reader = this.head;
    const status = reader.statusCode;
    const headers = reader.fields!;
    const minor = reader.httpMinor;

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
      statusText: reader.statusText,
      httpVersion: minor === 1 ? '1.1' : '1.0',
      headers,
      keepAlive,
      keepAliveTimeoutMs: kaTimeout,
      keepAliveMax: kaMax,
    };

    if (status < 200) {
      if (status === 101) throw new UnsupportedError('101 Switching Protocols is not supported');
      // Interim response: no body; the final response follows on the same stream.
      reader.startHead();
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
        next = S_CHUNKED;
        this.chunked.reset();
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
    reader.release();
    this.state = next;
    this.handler.onHead(head);
  }
}
