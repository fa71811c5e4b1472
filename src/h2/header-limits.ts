/**
 * The Agent's limits on a response head or trailer section (maxHeaderSize, maxHeaderCount) over
 * HTTP/2: what node:http2 is told to enforce as a header block arrives, and the check warmpool
 * makes again on what it hands over (node:http2 applies the list size only to streams opened after
 * the server acknowledged our SETTINGS, and has a floor of 4 on its pair count).
 */

/** The largest value a SETTINGS parameter or node:http2's pair limit can hold. */
const MAX_UINT32 = 0xffff_ffff;

/** The Agent's limits on a response head or trailer section (maxHeaderSize, maxHeaderCount). */
export interface H2HeaderLimits {
  maxHeaderSize: number;
  maxHeaderCount: number;
}

/**
 * The limits as node:http2 takes them: its pair count includes :status (and cannot go under 4); the
 * list size is also announced to the server as SETTINGS_MAX_HEADER_LIST_SIZE.
 */
export function nodeHeaderLimits(limits: H2HeaderLimits): {
  maxHeaderListPairs: number;
  maxHeaderListSize: number;
} {
  return {
    maxHeaderListPairs: Math.max(4, Math.min(MAX_UINT32, Math.floor(limits.maxHeaderCount) + 1)),
    maxHeaderListSize: Math.min(MAX_UINT32, Math.floor(limits.maxHeaderSize)),
  };
}

/**
 * How a received header list (node:http2's raw block: name, value, ...) is over `limits`, or null.
 * Its size is counted as RFC 9113 §6.5.2 counts SETTINGS_MAX_HEADER_LIST_SIZE, and as node:http2
 * does: name + value + 32 octets per field, pseudo-headers included (node:http2 hands over values
 * as one-byte strings: a length is a byte count). Fields are counted as over HTTP/1.1: the
 * pseudo-header (:status) is not one.
 */
export function headerListOverflow(raw: string[], limits: H2HeaderLimits): string | null {
  let size = 0;
  let fields = 0;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    size += name.length + raw[i + 1]!.length + 32;
    if (name.charCodeAt(0) !== 58) fields++; // ':'
  }
  if (size > limits.maxHeaderSize) {
    return `is ${size} bytes as HTTP/2 counts a header list, over maxHeaderSize (${limits.maxHeaderSize})`;
  }
  if (fields > limits.maxHeaderCount) {
    return `has ${fields} fields, more than maxHeaderCount (${limits.maxHeaderCount})`;
  }
  return null;
}

/**
 * node:http2 resets a stream with ENHANCE_YOUR_CALM when its header block goes over the limits it
 * was given, before any of it is handed over: what the caller is told then. A server's own
 * RST_STREAM with that code looks the same: it is rare, and reported alike.
 */
export function overLimitsResetMessage(origin: string, what: string, limits: H2HeaderLimits): string {
  return (
    `response ${what} from ${origin} over maxHeaderSize ` +
    `(${limits.maxHeaderSize} bytes as HTTP/2 counts a header list) or maxHeaderCount ` +
    `(${limits.maxHeaderCount}): the stream was reset (ENHANCE_YOUR_CALM)`
  );
}
