/**
 * The states of an HTTP/2 stream (H2Stream, stream.ts): two small fields and three flags.
 * - `recv`, the exchange's side, in order:
 *
 *   ```
 *   AWAITING ──► ANSWERED ──► HEAD ──► SETTLED ──► ENDED
 *      │            │           └──────────────────►▲        (HEAD → ENDED: the response arrived whole)
 *      └────────────┴──► SETTLED (failed, or handed back to the pool)
 *   ```
 *   ANSWERED: a 1xx head, or DATA ahead of the head, came: the server saw the request. HEAD: the
 *   final head was delivered and the body is arriving. SETTLED: the exchange is settled (its body
 *   ended or failed, or it went back to the pool); nothing reads what was received after that.
 *   ENDED: settled, and the server's END_STREAM arrived.
 * - `source`, a stream request body's source: NONE (no body, or bytes sent with the headers) →
 *   READING → READ (ended, failed or abandoned). A body read once cannot be replayed unless it is.
 * - `sendEnded`: our END_STREAM went out. Not a step after READ: node ends a stream it closes, so
 *   END_STREAM can go while the source is still being read (which must then be stopped).
 * - `paused` (its reader stopped reading) and `released` (the slot was given back) are independent.
 * The slot is released when `recv` is ENDED and `sendEnded`, or when the stream closes, whichever
 * comes first.
 */
export const RECV_AWAITING = 0; // sent; nothing received
export const RECV_ANSWERED = 1; // a 1xx head, or DATA ahead of the head
export const RECV_HEAD = 2; // the final head delivered; the body arriving
export const RECV_SETTLED = 3; // the exchange settled; END_STREAM not (yet) received
export const RECV_ENDED = 4; // settled, and END_STREAM received
export type RecvState = 0 | 1 | 2 | 3 | 4;
/** What a stream had received when it failed (it is not settled yet). */
export type Received = typeof RECV_AWAITING | typeof RECV_ANSWERED | typeof RECV_HEAD;

export const SOURCE_NONE = 0; // no stream body: none, or bytes sent with the headers
export const SOURCE_READING = 1; // reading the body's source into the stream
export const SOURCE_READ = 2; // the source ended, failed, or was abandoned
export type SourceState = 0 | 1 | 2;
