/**
 * What becomes of an exchange whose HTTP/2 stream ended before its response was whole, decided by
 * pure functions of what happened (who ended it, the RST_STREAM code, a GOAWAY), what the stream
 * had received, its request body, and the replays so far; and the error it fails with. The stream
 * gathers the facts and carries the outcome out (`H2Stream.endFacts`, `H2Stream.settle`): before
 * the response head the exchange goes back to the pool (`H2Connection.handBack`), which replays it
 * (`resend`: the server never processed it) or retries it (`onExchangeFailed`: the session died
 * under it) or rejects it; after the head its body errors.
 */
import http2 from 'node:http2';
import { HeadersOverflowError, Http2Error, SocketClosedError, WarmpoolError } from '../errors.js';
import { type H2HeaderLimits, overLimitsResetMessage } from './header-limits.js';
import { RECV_AWAITING, RECV_HEAD, type Received } from './stream-state.js';

const { NGHTTP2_NO_ERROR, NGHTTP2_REFUSED_STREAM, NGHTTP2_ENHANCE_YOUR_CALM } = http2.constants;

/** Times an exchange may be replayed after GOAWAY; a lone REFUSED_STREAM is replayed once. */
export const MAX_GOAWAY_REPLAYS = 3;

/** What happened to a stream that ended before its response was whole. */
export interface StreamEnd {
  /**
   * Who ended it: 'us' (a timeout, a header limit, the caller's abort or abandoned body, the request
   * body's source failing, a response without a head), or 'closed' (it closed under us: the server
   * reset it, or its session went away).
   */
  by: 'us' | 'closed';
  /** What it had received: RECV_AWAITING (nothing), RECV_ANSWERED (a 1xx, or DATA), RECV_HEAD. */
  received: Received;
  /** The error is the caller's abort. */
  aborted: boolean;
  /** The RST_STREAM code it closed with; NO_ERROR when it had none. */
  rstCode: number;
  /** Its session received a GOAWAY. */
  goaway: boolean;
  /** ...whose last-stream-id is below this stream's: the server never processed it. */
  aboveGoaway: boolean;
  /** Its session died under it (closed, destroyed, or going away), not just this one stream. */
  sessionLost: boolean;
  /** Its session came from the idle list (Exchange.connFromIdle), so may have been stale. */
  fromIdle: boolean;
  /** The request body's source was opened for this attempt (a one-shot stream is spent then). */
  bodyOpened: boolean;
  /** The request body can be sent again (none, bytes, or a stream factory). */
  bodyReplayable: boolean;
  /** Times the exchange was already replayed on another session. */
  replays: number;
}

/** How the exchange is settled. */
export type StreamOutcome =
  /** Its head was delivered: the error goes to the response body. */
  | 'fail-body'
  /** The caller aborted: rejected with that, nothing to retry. */
  | 'aborted'
  /** The server never processed it (REFUSED_STREAM, above a GOAWAY's last-stream-id) and its body can be sent again: first in line, on another session. */
  | 'replay-elsewhere'
  /** The session died under it before any response byte, and it may have been stale (reused, or going away): the pool retries it if the request is safe to send twice. */
  | 'retry-if-safe'
  /** The pool rejects it. */
  | 'fail';

/** Why a stream that closed under us closed, for its error. */
export type ClosedReason =
  /** REFUSED_STREAM before any response byte. */
  | 'refused'
  /** Above a GOAWAY's last-stream-id, before any response byte. */
  | 'goaway-unprocessed'
  /** Its session is going away, and the stream did not complete. */
  | 'goaway'
  /** node:http2 reset it with ENHANCE_YOUR_CALM: the header block went over our limits. */
  | 'headers-overflow'
  /** The session went away, or the stream closed with NO_ERROR. */
  | 'closed'
  /** The server reset the stream with an error code. */
  | 'reset';

export function isAbort(err: Error): boolean {
  return err instanceof WarmpoolError && err.code === 'WARMPOOL_ABORTED';
}

/** The server never processed the request: refused, or above a GOAWAY's last-stream-id. */
function unprocessed(e: StreamEnd): boolean {
  return e.received === RECV_AWAITING && (e.rstCode === NGHTTP2_REFUSED_STREAM || e.aboveGoaway);
}

export function streamOutcome(e: StreamEnd): StreamOutcome {
  if (e.received === RECV_HEAD) return 'fail-body';
  if (e.aborted) return 'aborted';
  if (e.by === 'us') return 'fail';
  if (
    unprocessed(e) &&
    e.replays < (e.aboveGoaway ? MAX_GOAWAY_REPLAYS : 1) &&
    (e.bodyReplayable || !e.bodyOpened)
  ) {
    return 'replay-elsewhere';
  }
  if (e.sessionLost && e.received === RECV_AWAITING && (e.fromIdle || e.goaway)) return 'retry-if-safe';
  return 'fail';
}

/** Why a stream closed under us (`by` 'closed'). */
export function closedReason(e: StreamEnd): ClosedReason {
  if (unprocessed(e)) return e.aboveGoaway ? 'goaway-unprocessed' : 'refused';
  if (e.goaway) return 'goaway';
  // A reset of this one stream with ENHANCE_YOUR_CALM, not the session going away.
  if (e.rstCode === NGHTTP2_ENHANCE_YOUR_CALM && !e.sessionLost) return 'headers-overflow';
  if (e.sessionLost || e.rstCode === NGHTTP2_NO_ERROR) return 'closed';
  return 'reset';
}

const ERROR_NAMES = [
  'NO_ERROR',
  'PROTOCOL_ERROR',
  'INTERNAL_ERROR',
  'FLOW_CONTROL_ERROR',
  'SETTINGS_TIMEOUT',
  'STREAM_CLOSED',
  'FRAME_SIZE_ERROR',
  'REFUSED_STREAM',
  'CANCEL',
  'COMPRESSION_ERROR',
  'CONNECT_ERROR',
  'ENHANCE_YOUR_CALM',
  'INADEQUATE_SECURITY',
  'HTTP_1_1_REQUIRED',
];

/** An HTTP/2 error code's name (RFC 9113 §7). */
export function errorName(code: number): string {
  return ERROR_NAMES[code] ?? `error code ${code}`;
}

/** What the error of a stream that closed under us says, beside its reason. */
export interface ClosedStreamContext {
  origin: string;
  /** The stream's RST_STREAM code. */
  rstCode: number;
  /** The session's GOAWAY code. */
  goawayCode: number;
  /** The head had been delivered (an over-limit block was the trailer section). */
  headDelivered: boolean;
  limits: H2HeaderLimits;
  /** What the stream and the session reported ('error' events). */
  streamError: Error | undefined;
  sessionError: Error | undefined;
}

/** The error a stream that closed under us fails with, for `reason` (closedReason). */
export function closedStreamError(reason: ClosedReason, c: ClosedStreamContext): Error {
  const origin = c.origin;
  const cause = c.streamError;
  switch (reason) {
    case 'goaway-unprocessed':
      return new Http2Error(
        `${origin} sent GOAWAY (${errorName(c.goawayCode)}) before processing the request`,
        { origin, cause },
      );
    case 'refused':
      return new Http2Error(`${origin} refused the HTTP/2 stream (REFUSED_STREAM)`, { origin, cause });
    case 'goaway':
      return goawayError(origin, c.goawayCode, c.sessionError);
    case 'headers-overflow': {
      const what = c.headDelivered ? 'trailer section' : 'head';
      return new HeadersOverflowError(overLimitsResetMessage(origin, what, c.limits), { origin, cause });
    }
    case 'closed':
      return new SocketClosedError(`connection to ${origin} closed`, {
        origin,
        cause: cause ?? c.sessionError,
      });
    default:
      return new Http2Error(`${origin} reset the HTTP/2 stream (${errorName(c.rstCode)})`, { origin, cause });
  }
}

/** A stream did not complete on a session going away. */
export function goawayError(origin: string, goawayCode: number, sessionError: Error | undefined): Error {
  return new Http2Error(`${origin} sent GOAWAY (${errorName(goawayCode)}); the stream did not complete`, {
    origin,
    cause: sessionError,
  });
}
