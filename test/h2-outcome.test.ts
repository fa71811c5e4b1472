/**
 * What becomes of an exchange whose HTTP/2 stream ended before its response was whole
 * (src/h2/outcome.ts), and the other decisions of the HTTP/2 modules that need no socket: when a
 * session is PINGed before reuse (liveness.ts), what SETTINGS and GOAWAY say (session.ts), and when
 * a header list is over the Agent's limits (header-limits.ts). Plain values in, a decision out.
 */
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import { test } from 'node:test';
import { headerListOverflow, nodeHeaderLimits } from '../src/h2/header-limits.js';
import { needsLivenessCheck } from '../src/h2/liveness.js';
import {
  type ClosedReason,
  MAX_GOAWAY_REPLAYS,
  type StreamEnd,
  type StreamOutcome,
  closedReason,
  closedStreamError,
  streamOutcome,
} from '../src/h2/outcome.js';
import { SessionSettings } from '../src/h2/session.js';
import { RECV_ANSWERED, RECV_AWAITING, RECV_HEAD } from '../src/h2/stream-state.js';

const {
  NGHTTP2_NO_ERROR,
  NGHTTP2_REFUSED_STREAM,
  NGHTTP2_CANCEL,
  NGHTTP2_ENHANCE_YOUR_CALM,
  NGHTTP2_INTERNAL_ERROR,
} = http2.constants;

/** A stream that closed under us, on a fresh session, before any response byte; `over` changes it. */
function closed(over: Partial<StreamEnd> = {}): StreamEnd {
  return {
    by: 'closed',
    received: RECV_AWAITING,
    aborted: false,
    rstCode: NGHTTP2_NO_ERROR,
    goaway: false,
    aboveGoaway: false,
    sessionLost: false,
    fromIdle: false,
    bodyOpened: false,
    bodyReplayable: true,
    replays: 0,
    ...over,
  };
}

function outcome(over: Partial<StreamEnd>): StreamOutcome {
  return streamOutcome(closed(over));
}

test('REFUSED_STREAM before any response byte: replayed once elsewhere, then failed', () => {
  assert.equal(outcome({ rstCode: NGHTTP2_REFUSED_STREAM }), 'replay-elsewhere');
  assert.equal(outcome({ rstCode: NGHTTP2_REFUSED_STREAM, replays: 1 }), 'fail');
  assert.equal(closedReason(closed({ rstCode: NGHTTP2_REFUSED_STREAM })), 'refused');
});

test('a stream above a GOAWAY last-stream-id: replayed elsewhere up to MAX_GOAWAY_REPLAYS times', () => {
  const above = { goaway: true, aboveGoaway: true, sessionLost: true };
  for (let replays = 0; replays < MAX_GOAWAY_REPLAYS; replays++) {
    assert.equal(outcome({ ...above, replays }), 'replay-elsewhere');
  }
  // Past the cap, the session died under it (going away): the pool retries it if safe.
  assert.equal(outcome({ ...above, replays: MAX_GOAWAY_REPLAYS }), 'retry-if-safe');
  assert.equal(closedReason(closed(above)), 'goaway-unprocessed');
});

test('the server saw the request (a 1xx, or DATA before the head): never replayed as unprocessed', () => {
  assert.equal(outcome({ received: RECV_ANSWERED, rstCode: NGHTTP2_REFUSED_STREAM }), 'fail');
  assert.equal(closedReason(closed({ received: RECV_ANSWERED, rstCode: NGHTTP2_REFUSED_STREAM })), 'reset');
  const lost = { received: RECV_ANSWERED, sessionLost: true, fromIdle: true } as const;
  assert.equal(outcome(lost), 'fail');
});

test('a request body read once cannot be replayed unless it is replayable; one never opened can', () => {
  const refused = { rstCode: NGHTTP2_REFUSED_STREAM };
  assert.equal(outcome({ ...refused, bodyOpened: true, bodyReplayable: false }), 'fail');
  assert.equal(outcome({ ...refused, bodyOpened: true, bodyReplayable: true }), 'replay-elsewhere');
  assert.equal(outcome({ ...refused, bodyOpened: false, bodyReplayable: false }), 'replay-elsewhere');
});

test('the session died under a stream with nothing received: retry-if-safe when it may have been stale', () => {
  assert.equal(outcome({ sessionLost: true, fromIdle: true }), 'retry-if-safe');
  assert.equal(outcome({ sessionLost: true, goaway: true }), 'retry-if-safe');
  // A session dialed for this request that died: not the stale-connection kind.
  assert.equal(outcome({ sessionLost: true }), 'fail');
  // The server reset this one stream: the session is fine, the request failed.
  assert.equal(outcome({ rstCode: NGHTTP2_INTERNAL_ERROR, fromIdle: true }), 'fail');
  assert.equal(closedReason(closed({ sessionLost: true })), 'closed');
  assert.equal(closedReason(closed({ sessionLost: true, goaway: true })), 'goaway');
});

test('after the head, any failure goes to the body; an abort settles as an abort', () => {
  assert.equal(outcome({ received: RECV_HEAD, sessionLost: true, fromIdle: true }), 'fail-body');
  assert.equal(outcome({ received: RECV_HEAD, aborted: true }), 'fail-body');
  assert.equal(outcome({ aborted: true, rstCode: NGHTTP2_REFUSED_STREAM }), 'aborted');
  assert.equal(outcome({ aborted: true, sessionLost: true, fromIdle: true }), 'aborted');
});

test('a stream we ended ourselves (a timeout, a limit, the body source) fails, whatever the session did', () => {
  const us = { by: 'us' } as const;
  assert.equal(outcome({ ...us }), 'fail');
  assert.equal(outcome({ ...us, rstCode: NGHTTP2_REFUSED_STREAM }), 'fail');
  assert.equal(outcome({ ...us, sessionLost: true, fromIdle: true }), 'fail');
  assert.equal(outcome({ ...us, goaway: true, aboveGoaway: true }), 'fail');
  assert.equal(outcome({ ...us, received: RECV_HEAD }), 'fail-body');
  assert.equal(outcome({ ...us, aborted: true }), 'aborted');
});

test('why a stream closed under us, and the error it fails with', () => {
  const cases: [Partial<StreamEnd>, ClosedReason, string, string][] = [
    [
      { rstCode: NGHTTP2_REFUSED_STREAM },
      'refused',
      'Http2Error',
      'refused the HTTP/2 stream (REFUSED_STREAM)',
    ],
    [
      { goaway: true, aboveGoaway: true, sessionLost: true },
      'goaway-unprocessed',
      'Http2Error',
      'before processing',
    ],
    [{ goaway: true, sessionLost: true }, 'goaway', 'Http2Error', 'the stream did not complete'],
    [{ rstCode: NGHTTP2_ENHANCE_YOUR_CALM }, 'headers-overflow', 'HeadersOverflowError', 'ENHANCE_YOUR_CALM'],
    // ENHANCE_YOUR_CALM as the session dies is the session's doing, not our limits.
    [{ rstCode: NGHTTP2_ENHANCE_YOUR_CALM, sessionLost: true }, 'closed', 'SocketClosedError', 'closed'],
    [{ rstCode: NGHTTP2_NO_ERROR }, 'closed', 'SocketClosedError', 'closed'],
    [{ rstCode: NGHTTP2_CANCEL }, 'reset', 'Http2Error', 'reset the HTTP/2 stream (CANCEL)'],
    [{ rstCode: 0x42 }, 'reset', 'Http2Error', 'reset the HTTP/2 stream (error code 66)'],
  ];
  for (const [over, reason, name, text] of cases) {
    const end = closed(over);
    assert.equal(closedReason(end), reason, JSON.stringify(over));
    const err = closedStreamError(reason, {
      origin: 'https://example.test',
      rstCode: end.rstCode,
      goawayCode: NGHTTP2_NO_ERROR,
      headDelivered: false,
      limits: { maxHeaderSize: 16384, maxHeaderCount: 100 },
      streamError: undefined,
      sessionError: undefined,
    });
    assert.equal(err.constructor.name, name, reason);
    assert.match(err.message, new RegExp(text.replace(/[()]/g, '\\$&')), reason);
  }
});

test('a session is PINGed before reuse when idle 1 s by either clock, or when the clocks disagree', () => {
  assert.equal(needsLivenessCheck(0, 0), false);
  assert.equal(needsLivenessCheck(999, 999), false);
  assert.equal(needsLivenessCheck(1000, 1000), true);
  assert.equal(needsLivenessCheck(10, 1000), true); // a frozen monotonic clock
  assert.equal(needsLivenessCheck(1000, 10), true); // the wall clock stepped back
  assert.equal(needsLivenessCheck(300, 50), true); // under 1 s each, 250 ms apart
  assert.equal(needsLivenessCheck(300, 51), false);
});

test('SETTINGS: the stream limit (capped), a REFUSED_STREAM ceiling lifted by the next SETTINGS, readiness', () => {
  const s = new SessionSettings();
  assert.equal(s.becomeReady(), false);
  assert.equal(s.onRemote(undefined), false);
  assert.equal(s.limit, 1000); // no limit announced: as Go's transport does
  assert.equal(s.becomeReady(), false); // our SETTINGS not acknowledged yet
  s.onLocalAcked();
  assert.equal(s.becomeReady(), true);
  assert.equal(s.becomeReady(), false); // once
  s.onRemote(10);
  s.onRefused(4);
  assert.equal(s.limit, 4);
  s.onRefused(0);
  assert.equal(s.limit, 1);
  assert.equal(s.onRemote(0), false);
  assert.equal(s.limit, 0);
  assert.equal(s.onRemote(5), true); // it was withheld
  assert.equal(s.limit, 5);
});

test('GOAWAY: streams above its last-stream-id were never processed', () => {
  const s = new SessionSettings();
  assert.equal(s.goaway, false);
  assert.equal(s.aboveGoaway(5), false);
  s.onGoaway(NGHTTP2_NO_ERROR, 3);
  assert.equal(s.goaway, true);
  assert.equal(s.aboveGoaway(3), false);
  assert.equal(s.aboveGoaway(5), true);
  assert.equal(s.aboveGoaway(undefined), false);
});

test('header limits: counted as RFC 9113 counts a header list; fields without :status', () => {
  const raw = [':status', '200', 'a', 'bc'];
  // (7 + 3 + 32) + (1 + 2 + 32)
  assert.equal(headerListOverflow(raw, { maxHeaderSize: 77, maxHeaderCount: 1 }), null);
  assert.match(headerListOverflow(raw, { maxHeaderSize: 76, maxHeaderCount: 1 }) ?? '', /is 77 bytes/);
  assert.match(headerListOverflow(raw, { maxHeaderSize: 77, maxHeaderCount: 0 }) ?? '', /has 1 fields/);
  assert.deepEqual(nodeHeaderLimits({ maxHeaderSize: 1e12, maxHeaderCount: 2 }), {
    maxHeaderListPairs: 4,
    maxHeaderListSize: 0xffff_ffff,
  });
  assert.equal(nodeHeaderLimits({ maxHeaderSize: 100, maxHeaderCount: 100 }).maxHeaderListPairs, 101);
});
