import { Transform } from 'node:stream';
import zlib from 'node:zlib';
import { DecodeError, WarmpoolError } from '../errors.js';
import { getOwn } from '../headers.js';
import { type BodySource, ResponseBody } from './body.js';
import { Response } from './response.js';

/**
 * Content codings (RFC 9110 §8.4) undone for `decompress` (request()) and for fetch(). The decoded
 * body is a ResponseBody of its own, fed by the decoders, so text()/json()/dump(), streaming and
 * backpressure work as on any body; the raw body under it holds the connection lease as usual.
 */

type DecoderFactory = () => Transform;

/**
 * zlib's defaults treat a stream cut short as an error. Servers commonly end gzip and deflate bodies
 * without the final block flushed (and so do browsers and Node's fetch, which accept them): decoding
 * as far as the bytes go is what a reader expects.
 */
const LENIENT = { flush: zlib.constants.Z_SYNC_FLUSH, finishFlush: zlib.constants.Z_SYNC_FLUSH };

/** `zlib.createZstdDecompress` exists from Node 22.15 / 23.8; on older Nodes zstd bodies stay encoded. */
const createZstd = (zlib as { createZstdDecompress?: () => Transform }).createZstdDecompress;

const DECODERS: ReadonlyMap<string, DecoderFactory> = new Map<string, DecoderFactory>([
  ['gzip', () => zlib.createGunzip(LENIENT)],
  ['x-gzip', () => zlib.createGunzip(LENIENT)],
  ['deflate', () => new DeflateDecoder()],
  ['br', () => zlib.createBrotliDecompress()],
  ...(createZstd === undefined ? [] : [['zstd', () => createZstd()] as [string, DecoderFactory]]),
]);

/** The codings this Node can undo, as an accept-encoding value. */
export const ACCEPT_ENCODING = createZstd === undefined ? 'gzip, deflate, br' : 'gzip, deflate, br, zstd';

/**
 * More codings than this in one content-encoding is not a real response: each layer is a decoder
 * (a zlib context of its own, up to a few hundred KiB for brotli), and a hostile server could ask
 * for thousands. Node's fetch has the same cap.
 */
const MAX_CODINGS = 5;

/** Statuses whose response has no content (RFC 9110 §6.4.1), and so nothing to decode. */
function hasNoContent(status: number, method: string): boolean {
  return method === 'HEAD' || status === 204 || status === 304 || status < 200;
}

/**
 * The decoders for a content-encoding value, in decoding order (the reverse of the listed order:
 * the last coding listed was applied last). Null when there is nothing to undo, or a coding is one
 * this Node does not know (the body is then handed over as received, as Node's fetch does).
 */
export function decodersFor(contentEncoding: string): DecoderFactory[] | null {
  const names = contentEncoding.split(',');
  if (names.length > MAX_CODINGS) {
    throw new DecodeError(
      `content-encoding lists ${names.length} codings; at most ${MAX_CODINGS} are decoded`,
    );
  }
  const factories: DecoderFactory[] = [];
  for (let i = names.length - 1; i >= 0; i--) {
    const name = names[i]!.trim().toLowerCase();
    if (name === 'identity' || name === '') continue;
    const factory = DECODERS.get(name);
    if (factory === undefined) return null;
    factories.push(factory);
  }
  return factories.length === 0 ? null : factories;
}

/**
 * The response with its body decoded, or the response itself when it has no coding to undo (no
 * content-encoding, a HEAD, a 204/304, an unknown coding). Headers are left as the server sent them,
 * content-encoding and content-length included, as Node's fetch leaves them.
 */
export function decodeResponse(res: Response, method: string): Response {
  if (hasNoContent(res.status, method)) return res;
  const value = getOwn(res.headers, 'content-encoding');
  if (value === undefined) return res;
  let factories: DecoderFactory[] | null;
  try {
    factories = decodersFor(typeof value === 'string' ? value : value.join(','));
  } catch (err) {
    res.body.destroy();
    throw err;
  }
  if (factories === null) return res;
  const decoded = new DecodingSource(res.body, factories, res.body.readableHighWaterMark).output;
  return new Response(
    res.status,
    res.statusText,
    res.httpVersion,
    res.headers,
    null,
    decoded,
    res.connection,
    res.timings,
    res.retried,
    res.url,
  );
}

/**
 * Feeds a decoded ResponseBody from a raw one through a chain of decoders. Backpressure runs end to
 * end: the decoded body's reader pauses the last decoder, which fills and stops the raw body, whose
 * own limit pauses the socket.
 */
class DecodingSource implements BodySource {
  readonly output: ResponseBody;
  private readonly raw: ResponseBody;
  private readonly decoders: Transform[];
  private finished = false;

  constructor(raw: ResponseBody, factories: DecoderFactory[], highWaterMark: number) {
    this.raw = raw;
    this.output = new ResponseBody(this, highWaterMark);
    this.decoders = factories.map((make) => make());
    let upstream: NodeJS.ReadableStream = raw;
    for (const decoder of this.decoders) {
      upstream.on('error', (err: Error) => this.fail(err));
      upstream = upstream.pipe(decoder);
    }
    const last = this.decoders[this.decoders.length - 1]!;
    last.on('error', (err: Error) => this.fail(err));
    last.on('data', (chunk: Buffer) => {
      if (!this.output.pushChunk(chunk)) last.pause();
    });
    last.on('end', () => {
      if (this.finished) return;
      this.finished = true;
      this.output.endFromSource(this.raw.trailers);
    });
  }

  resumeBody(): void {
    this.decoders[this.decoders.length - 1]!.resume();
  }

  /** The reader gave up: stop reading the raw body (which gives its connection up) and the decoders. */
  abandonBody(_body: ResponseBody, err: Error): void {
    this.finished = true;
    this.teardown(err);
  }

  private fail(err: Error): void {
    if (this.finished) return;
    this.finished = true;
    // A failure of the raw body (reset, timeout, abort) is already typed; anything else came from a
    // decoder: the bytes were not what their coding said.
    const typed =
      err instanceof WarmpoolError
        ? err
        : new DecodeError(`the response body could not be decoded: ${err.message}`, { cause: err });
    this.teardown(typed);
    this.output.failFromSource(typed);
  }

  private teardown(err: Error): void {
    if (!this.raw.destroyed) this.raw.destroy(err);
    for (const d of this.decoders) if (!d.destroyed) d.destroy();
  }
}

/**
 * "deflate" is the zlib format (RFC 1950) by the standard, but some servers send raw deflate (RFC
 * 1951). The first byte tells them apart: a zlib stream starts with a CMF byte whose low four bits
 * are 8 (the deflate method).
 */
class DeflateDecoder extends Transform {
  private inner: Transform | null = null;
  override _transform(
    chunk: Buffer,
    _encoding: BufferEncoding,
    callback: (err?: Error | null) => void,
  ): void {
    if (this.inner === null) {
      const inner =
        (chunk[0]! & 0x0f) === 0x08 ? zlib.createInflate(LENIENT) : zlib.createInflateRaw(LENIENT);
      inner.on('data', (c: Buffer) => this.push(c));
      inner.on('error', (err: Error) => this.destroy(err));
      this.inner = inner;
    }
    // The callback runs once zlib has taken the chunk: the next one waits, so input is not buffered.
    this.inner.write(chunk, callback);
  }
  override _flush(callback: (err?: Error | null) => void): void {
    const inner = this.inner;
    if (inner === null) {
      callback();
      return;
    }
    inner.once('end', () => callback());
    inner.end();
  }
  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    this.inner?.destroy();
    callback(err);
  }
}
