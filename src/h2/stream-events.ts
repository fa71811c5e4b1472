/**
 * node:http2's stream events, routed to the H2Stream they belong to by shared functions: the
 * H2Stream hangs off the node stream under a symbol, so no closure is made per request.
 */
import type { ClientHttp2Stream, IncomingHttpHeaders } from 'node:http2';
import type { H2Stream } from './stream.js';

const STATE = Symbol('warmpool.h2.stream');
interface TaggedStream extends ClientHttp2Stream {
  [STATE]: H2Stream;
}

/** Routes the events of the response side of `stream` (and its 'error' and 'close') to `s`. */
export function routeEvents(stream: ClientHttp2Stream, s: H2Stream): void {
  (stream as TaggedStream)[STATE] = s;
  stream.on('response', onStreamResponse as HeadersListener);
  stream.on('headers', onStreamHeaders as HeadersListener);
  stream.on('data', onStreamData);
  stream.on('trailers', onStreamTrailers as HeadersListener);
  stream.on('end', onStreamEnd);
  stream.on('error', onStreamError);
  stream.on('close', onStreamClose);
}

/** ...and of the request side, when a body follows the headers (`drain`: written with backpressure). */
export function routeSendEvents(stream: ClientHttp2Stream, drain: boolean): void {
  stream.on('finish', onStreamFinish);
  if (drain) stream.on('drain', onStreamDrain);
}

// The handlers: `this` is the node stream. The header
// events carry node:http2's header object and, third, the raw block (name, value, ...): the object
// gives the fields node has already checked, the raw block becomes IncomingHeaders (incomingHeaders).
type HeadersListener = (headers: IncomingHttpHeaders, flags: number) => void;
function onStreamResponse(
  this: TaggedStream,
  headers: IncomingHttpHeaders,
  _flags: number,
  raw: string[],
): void {
  this[STATE].onResponse(headers, raw);
}
function onStreamHeaders(
  this: TaggedStream,
  headers: IncomingHttpHeaders,
  _flags: number,
  raw: string[],
): void {
  this[STATE].onInformation(headers, raw);
}
function onStreamData(this: TaggedStream, chunk: Buffer): void {
  this[STATE].onData(chunk);
}
function onStreamTrailers(
  this: TaggedStream,
  _headers: IncomingHttpHeaders,
  _flags: number,
  raw: string[],
): void {
  this[STATE].onTrailers(raw);
}
function onStreamEnd(this: TaggedStream): void {
  this[STATE].onEnd();
}
function onStreamFinish(this: TaggedStream): void {
  this[STATE].onSendDone();
}
function onStreamDrain(this: TaggedStream): void {
  this[STATE].wakeWriter();
}
function onStreamError(this: TaggedStream, err: Error): void {
  const s = this[STATE];
  if (s.error === undefined) s.error = err;
}
function onStreamClose(this: TaggedStream): void {
  this[STATE].onClose();
}
