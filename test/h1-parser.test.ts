import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { HeadersOverflowError, ParseError, SocketClosedError, UnsupportedError } from '../src/errors.js';
import {
  type ParserLimits,
  type ResponseHead,
  ResponseParser,
  type ResponseParserHandler,
} from '../src/h1/parser.js';
import type { IncomingHeaders } from '../src/headers.js';

class Events implements ResponseParserHandler {
  info: ResponseHead[] = [];
  head: ResponseHead | undefined;
  chunks: Buffer[] = [];
  done: { trailers: IncomingHeaders | undefined; reusable: boolean } | undefined;
  order: string[] = [];

  onInformation(head: ResponseHead): void {
    this.info.push(head);
    this.order.push(`info ${head.statusCode}`);
  }
  onHead(head: ResponseHead): void {
    this.head = head;
    this.order.push(`head ${head.statusCode}`);
  }
  onBody(data: Buffer, start: number, end: number): void {
    this.chunks.push(data.subarray(start, end));
    this.order.push('body');
  }
  onComplete(trailers: IncomingHeaders | undefined, reusable: boolean): void {
    this.done = { trailers, reusable };
    this.order.push('complete');
  }
  get body(): string {
    return Buffer.concat(this.chunks).toString('latin1');
  }
}

function bytes(s: string): Buffer {
  return Buffer.from(s, 'latin1');
}

/** Arm a parser and feed `pieces`; returns the events, the parser and the total unconsumed bytes. */
function feed(pieces: string | string[], opts: { head?: boolean; limits?: ParserLimits } = {}) {
  const ev = new Events();
  const parser = new ResponseParser(ev, opts.limits);
  parser.expect(opts.head ?? false);
  let leftover = 0;
  for (const p of typeof pieces === 'string' ? [pieces] : pieces) {
    const buf = bytes(p);
    if (ev.done) {
      leftover += buf.length;
      continue;
    }
    const n = parser.execute(buf);
    leftover += buf.length - n;
  }
  return { ev, parser, leftover };
}

function splitEverywhere(s: string): string[][] {
  const out: string[][] = [];
  for (let i = 1; i < s.length; i++) out.push([s.slice(0, i), s.slice(i)]);
  return out;
}

const SIMPLE = 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello';

describe('ResponseParser: status line', () => {
  it('parses status code, reason and version, with lowercase header names', () => {
    const { ev } = feed(SIMPLE);
    assert.equal(ev.head?.statusCode, 200);
    assert.equal(ev.head?.statusText, 'OK');
    assert.equal(ev.head?.httpVersion, '1.1');
    assert.deepEqual(ev.head?.headers, { 'content-type': 'text/plain', 'content-length': '5' });
    assert.equal(ev.body, 'hello');
    assert.deepEqual(ev.done, { trailers: undefined, reusable: true });
  });

  it('accepts a missing reason phrase and an empty one', () => {
    assert.equal(feed('HTTP/1.1 204\r\n\r\n').ev.head?.statusText, '');
    assert.equal(feed('HTTP/1.1 204 \r\n\r\n').ev.head?.statusText, '');
  });

  it('keeps obs-text in the reason phrase as latin1 and extra spaces inside it', () => {
    assert.equal(feed('HTTP/1.1 500 Ori\xc3\xabnt\r\n\r\n').ev.head?.statusText, 'Ori\xc3\xabnt');
    assert.equal(feed('HTTP/1.1 200  OK\r\n\r\n').ev.head?.statusText, ' OK');
  });

  it('tolerates empty lines before the status line', () => {
    const { ev } = feed('\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n');
    assert.equal(ev.head?.statusCode, 204);
  });

  for (const [what, line] of [
    ['an extra space before the code', 'HTTP/1.1  200 OK'],
    ['a one-digit code', 'HTTP/1.1 2 OK'],
    ['a four-digit code', 'HTTP/1.1 2000 OK'],
    ['a code starting with 0', 'HTTP/1.1 099 OK'],
    ['HTTP/2.0', 'HTTP/2.0 200 OK'],
    ['HTTP/1.2', 'HTTP/1.2 200 OK'],
    ['HTTP/0.9', 'HTTP/0.9 200 OK'],
    ['RTSP', 'RTSP/1.1 200 OK'],
    ['ICE', 'ICE/1.1 200 OK'],
    ['lowercase http', 'http/1.1 200 OK'],
    ['a tab after the version', 'HTTP/1.1\t200 OK'],
    ['a NUL in the reason', 'HTTP/1.1 200 O\0K'],
  ]) {
    it(`rejects a status line with ${what}`, () => {
      assert.throws(() => feed(`${line}\r\n\r\n`), ParseError);
    });
  }
});

describe('ResponseParser: line endings', () => {
  it('rejects bare LF after the status line', () => {
    assert.throws(() => feed('HTTP/1.1 200 OK\nContent-Length: 0\n\n'), ParseError);
  });
  it('rejects bare LF after a header line and as the final empty line', () => {
    assert.throws(() => feed('HTTP/1.1 200 OK\r\nA: b\n\r\n'), ParseError);
    assert.throws(() => feed('HTTP/1.1 200 OK\r\nA: b\r\n\n'), ParseError);
  });
  it('rejects bare CR inside the status line and inside a header value', () => {
    assert.throws(() => feed('HTTP/1.1 200 OK\rContent-Length: 0\r\n\r\n'), ParseError);
    assert.throws(() => feed('HTTP/1.1 200 OK\r\nFoo: 1\rBar: 2\r\n\r\n'), ParseError);
  });
  it('rejects a bare LF even when the CR and LF arrive in different execute() calls', () => {
    assert.throws(() => feed(['HTTP/1.1 200 OK\r\nA: b', '\n\r\n']), ParseError);
  });
  it('gives the same result for a split at every byte, including inside each CRLF', () => {
    const msg = 'HTTP/1.1 200 OK\r\nA: 1\r\nB:  two  \r\nContent-Length: 3\r\n\r\nxyz';
    for (const pieces of splitEverywhere(msg)) {
      const { ev, leftover } = feed(pieces);
      assert.deepEqual(ev.head?.headers, { a: '1', b: 'two', 'content-length': '3' }, JSON.stringify(pieces));
      assert.equal(ev.body, 'xyz');
      assert.equal(leftover, 0);
      assert.equal(ev.done?.reusable, true);
    }
  });
});

describe('ResponseParser: header fields', () => {
  it('trims leading and trailing SP/HTAB from values and keeps inner whitespace', () => {
    const { ev } = feed('HTTP/1.1 204 X\r\nA:\t one  two \t\r\nB:\r\nC:   \r\n\r\n');
    assert.deepEqual(ev.head?.headers, { a: 'one  two', b: '', c: '' });
  });
  it('turns repeated fields into an array in arrival order, case-insensitively', () => {
    const { ev } = feed(
      'HTTP/1.1 204 X\r\nSet-Cookie: a=1\r\nX: y\r\nset-cookie: b=2\r\nSET-COOKIE: c=3\r\n\r\n',
    );
    assert.deepEqual(ev.head?.headers['set-cookie'], ['a=1', 'b=2', 'c=3']);
  });
  it('rejects whitespace between the field name and the colon', () => {
    assert.throws(() => feed('HTTP/1.1 200 OK\r\nContent-Length : 0\r\n\r\n'), ParseError);
  });
  it('rejects a field name that is not a token (space, empty, missing colon)', () => {
    assert.throws(() => feed('HTTP/1.1 200 OK\r\nen-US Content-Type: x\r\n\r\n'), ParseError);
    assert.throws(() => feed('HTTP/1.1 200 OK\r\n: x\r\n\r\n'), ParseError);
    assert.throws(() => feed('HTTP/1.1 200 OK\r\nNoColon\r\n\r\n'), ParseError);
    assert.throws(() => feed('HTTP/1.1 200 OK\r\nA\x7fB: x\r\n\r\n'), ParseError);
  });
  it('accepts tchar punctuation in names', () => {
    const { ev } = feed("HTTP/1.1 204 X\r\n.et-Cookie_#$%&'*+^`|~!: v\r\n\r\n");
    assert.equal(ev.head?.headers[".et-cookie_#$%&'*+^`|~!"], 'v');
  });
  it('rejects NUL and other control bytes in values but accepts obs-text', () => {
    assert.throws(() => feed('HTTP/1.1 200 OK\r\nA: x\0y\r\n\r\n'), ParseError);
    assert.throws(() => feed('HTTP/1.1 200 OK\r\nA: x\x01y\r\n\r\n'), ParseError);
    assert.throws(() => feed('HTTP/1.1 200 OK\r\nA: x\x7fy\r\n\r\n'), ParseError);
    assert.equal(feed('HTTP/1.1 204 X\r\nA: caf\xe9\r\n\r\n').ev.head?.headers.a, 'caf\xe9');
  });
  it('stores a __proto__ field as an own property without touching the prototype', () => {
    const { ev } = feed('HTTP/1.1 204 X\r\n__proto__: a\r\n__proto__: b\r\n\r\n');
    const h = ev.head!.headers;
    assert.equal(Object.getPrototypeOf(h), Object.prototype);
    assert.deepEqual(Object.getOwnPropertyDescriptor(h, '__proto__')?.value, ['a', 'b']);
  });
  it('stores fields named like Object.prototype members (constructor, toString) as own values', () => {
    const { ev } = feed('HTTP/1.1 204 X\r\nConstructor: a\r\ntoString: b\r\ntostring: c\r\n\r\n');
    assert.deepEqual(ev.head?.headers, { constructor: 'a', tostring: ['b', 'c'] });
  });
});

describe('ResponseParser: obs-fold (RFC 9112 §5.2)', () => {
  it('replaces an obs-fold with a single SP joining the continuation to the previous value', () => {
    const { ev } = feed('HTTP/1.1 204 X\r\nA: one\r\n   two  \r\n\tthree\r\nB: b\r\n\r\n');
    assert.deepEqual(ev.head?.headers, { a: 'one two three', b: 'b' });
  });
  it('continues the last value of a repeated field', () => {
    const { ev } = feed('HTTP/1.1 204 X\r\nA: 1\r\nA: 2\r\n more\r\n\r\n');
    assert.deepEqual(ev.head?.headers.a, ['1', '2 more']);
  });
  it('ignores a whitespace-only continuation and continues an empty value without a leading SP', () => {
    const { ev } = feed('HTTP/1.1 204 X\r\nA: 1\r\n  \r\nB:\r\n x\r\n\r\n');
    assert.deepEqual(ev.head?.headers, { a: '1', b: 'x' });
  });
  it('uses the unfolded value for framing (Content-Length folded onto a new line)', () => {
    const { ev } = feed('HTTP/1.1 200 OK\r\nContent-Length:\r\n 2\r\n\r\nhi');
    assert.equal(ev.body, 'hi');
  });
  it('rejects a continuation line directly after the status line, even before its LF arrives', () => {
    assert.throws(() => feed('HTTP/1.1 200 OK\r\n Host: foo\r\n\r\n'), ParseError);
    assert.throws(() => feed(['HTTP/1.1 200 OK\r\n', ' Host']), ParseError);
  });
});

describe('ResponseParser: a section that came whole', () => {
  /** What feeding `pieces` ends in: the error, or the heads, body, trailers and leftover bytes. */
  function outcome(pieces: string[], limits?: ParserLimits): string {
    try {
      const { ev, leftover } = feed(pieces, { limits });
      return JSON.stringify({ info: ev.info, head: ev.head, body: ev.body, done: ev.done, leftover });
    } catch (err) {
      return `${(err as Error).constructor.name}: ${(err as Error).message}`;
    }
  }
  // One scan finds the end of a section that came in one read; byte by byte, the lines are found one
  // at a time. Both must end the same way, for good heads and bad ones.
  const cases: Array<[string, string, ParserLimits?]> = [
    ['a plain head and body', SIMPLE],
    ['leading empty lines before the status line', `\r\n\r\n${SIMPLE}`],
    ['a bare LF that hides an earlier empty line', 'HTTP/1.1 200 OK\r\nA: b\n\r\nC: d\r\n\r\n'],
    ['an empty line ending in a bare LF', 'HTTP/1.1 200 OK\r\nA: b\r\n\nC: d\r\n\r\n'],
    ['a bare CR just before the end', 'HTTP/1.1 200 OK\r\nA: b\r\r\n\r\n'],
    ['obs-fold', 'HTTP/1.1 200 OK\r\nA: b\r\n  c\r\nContent-Length: 0\r\n\r\n'],
    [
      'an interim response and the final one in one read',
      `HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n${SIMPLE}`,
    ],
    [
      'trailers, then bytes of a next response',
      'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\nT: 1\r\n\r\nHTTP/1.1 200 OK\r\n\r\n',
    ],
    [
      'an empty trailer section, then bytes of a next response',
      'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nHTTP/1.1 204 No\r\nA: b\r\n\r\n',
    ],
    ['a head one byte over maxHeaderSize', 'HTTP/1.1 204 X\r\nA: xxxxxxxx\r\n\r\n', { maxHeaderSize: 30 }],
    ['a head exactly maxHeaderSize', 'HTTP/1.1 204 X\r\nA: xxxxxxxx\r\n\r\n', { maxHeaderSize: 31 }],
    ['a head cut short', 'HTTP/1.1 200 OK\r\nA: b\r\nC'],
  ];
  for (const [name, msg, limits] of cases) {
    it(`ends as byte by byte does: ${name}`, () => {
      assert.equal(outcome([msg], limits), outcome([...msg], limits));
    });
  }
  it('takes the end of a head in one read as the end of the head, not a CRLFCRLF in its body', () => {
    const { ev } = feed('HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nab\r\n\r\ncd');
    assert.deepEqual(ev.head?.headers, { 'content-length': '8' });
    assert.equal(ev.body, 'ab\r\n\r\ncd');
  });
});

describe('ResponseParser: limits', () => {
  it('accepts a head of exactly maxHeaderSize bytes and rejects one byte more', () => {
    const head = 'HTTP/1.1 204 X\r\nA: xxxxxxxx\r\n\r\n';
    assert.equal(feed(head, { limits: { maxHeaderSize: head.length } }).ev.head?.statusCode, 204);
    assert.throws(() => feed(head, { limits: { maxHeaderSize: head.length - 1 } }), HeadersOverflowError);
  });
  it('throws HeadersOverflowError as soon as the limit is passed, before the head is complete', () => {
    const ev = new Events();
    const parser = new ResponseParser(ev, { maxHeaderSize: 1024 });
    parser.expect(false);
    parser.execute(bytes('HTTP/1.1 200 OK\r\nX-Big: '));
    parser.execute(bytes('a'.repeat(900)));
    // No LF has arrived for this line and none ever needs to: the error comes now.
    assert.throws(() => parser.execute(bytes('a'.repeat(200))), HeadersOverflowError);
    assert.equal(ev.head, undefined);
  });
  it('throws HeadersOverflowError for a single huge chunk without scanning to its end', () => {
    assert.throws(
      () => feed(`HTTP/1.1 200 OK\r\nX: ${'a'.repeat(70000)}`),
      (e: unknown) => e instanceof HeadersOverflowError && e.code === 'WARMPOOL_HEADERS_OVERFLOW',
    );
  });
  it('counts the default limit as 64 KiB for the whole head', () => {
    const filler = `X: ${'a'.repeat(65536 - 'HTTP/1.1 204 X\r\n'.length - 'X: '.length - 4)}\r\n\r\n`;
    assert.equal(feed(`HTTP/1.1 204 X\r\n${filler}`).ev.head?.statusCode, 204);
    assert.throws(() => feed(`HTTP/1.1 204 X\r\nY${filler}`), HeadersOverflowError);
  });
  it('rejects more than maxHeaderCount fields', () => {
    const fields = (n: number) => Array.from({ length: n }, (_, i) => `H${i}: v\r\n`).join('');
    assert.equal(
      feed(`HTTP/1.1 204 X\r\n${fields(3)}\r\n`, { limits: { maxHeaderCount: 3 } }).ev.done?.reusable,
      true,
    );
    assert.throws(
      () => feed(`HTTP/1.1 204 X\r\n${fields(4)}\r\n`, { limits: { maxHeaderCount: 3 } }),
      HeadersOverflowError,
    );
    assert.throws(() => feed(`HTTP/1.1 204 X\r\n${fields(129)}\r\n`), HeadersOverflowError);
  });
  it('applies the limits to the trailer section too', () => {
    const msg = `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nT: ${'a'.repeat(100)}\r\n\r\n`;
    assert.throws(() => feed(msg, { limits: { maxHeaderSize: 80 } }), HeadersOverflowError);
  });
});

describe('ResponseParser: interim responses', () => {
  it('reports 100 and 103 through onInformation and then parses the final response in the same call', () => {
    const { ev } = feed(
      'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok',
    );
    assert.deepEqual(ev.order, ['info 100', 'info 103', 'head 200', 'body', 'complete']);
    assert.deepEqual(ev.info[1].headers, { link: '</a.css>' });
    assert.deepEqual(ev.head?.headers, { 'content-length': '2' });
  });
  it('handles 1xx split across calls and a HEAD request', () => {
    const { ev } = feed(['HTTP/1.1 102 Processing\r', '\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n'], {
      head: true,
    });
    assert.deepEqual(ev.order, ['info 102', 'head 200', 'complete']);
  });
  it('throws UnsupportedError for 101 Switching Protocols and is dead afterwards', () => {
    const ev = new Events();
    const parser = new ResponseParser(ev);
    parser.expect(false);
    assert.throws(
      () => parser.execute(bytes('HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n')),
      (e: unknown) =>
        e instanceof UnsupportedError && e.message === '101 Switching Protocols is not supported',
    );
    assert.equal(ev.head, undefined);
    assert.throws(() => parser.execute(bytes('HTTP/1.1 200 OK\r\n\r\n')), ParseError);
    assert.equal(parser.busy, false);
  });
  it('says a final response is still owed when the connection closes after a 1xx', () => {
    const { parser } = feed('HTTP/1.1 100 Continue\r\n\r\n');
    assert.equal(parser.busy, true);
    assert.throws(() => parser.finish(), /informational/);
  });
});

describe('ResponseParser: bodies without content', () => {
  it('completes a HEAD response with Content-Length at the end of the head and leaves later bytes', () => {
    const msg = 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n';
    const { ev, leftover } = feed(`${msg}hello`, { head: true });
    assert.deepEqual(ev.order, ['head 200', 'complete']);
    assert.equal(leftover, 5);
  });
  it('completes a HEAD response with chunked framing without reading chunks', () => {
    const { ev, leftover } = feed('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n', { head: true });
    assert.deepEqual(ev.order, ['head 200', 'complete']);
    assert.equal(ev.done?.reusable, true);
    assert.equal(leftover, 0);
  });
  it('returns the leftover count after a 204 and a 304 that are followed by more bytes', () => {
    const extra = 'HTTP/1.1 200 OK\r\n';
    const a = feed(`HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n${extra}`);
    assert.deepEqual(a.ev.order, ['head 204', 'complete']);
    assert.equal(a.leftover, extra.length);
    const b = feed(`HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n${extra}`);
    assert.deepEqual(b.ev.order, ['head 304', 'complete']);
    assert.equal(b.leftover, extra.length);
  });
  it('returns immediately after onComplete with the consumed count', () => {
    const ev = new Events();
    const parser = new ResponseParser(ev);
    parser.expect(false);
    const data = bytes('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhiXYZ');
    assert.equal(parser.execute(data), data.length - 3);
  });
  it('completes Content-Length: 0 without calling onBody', () => {
    const { ev } = feed('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n');
    assert.deepEqual(ev.order, ['head 200', 'complete']);
  });
  it('still rejects a malformed Content-Length on a bodiless response', () => {
    assert.throws(() => feed('HTTP/1.1 304 X\r\nContent-Length: abc\r\n\r\n'), ParseError);
  });
});

describe('ResponseParser: Content-Length', () => {
  it('hands out body chunks as views of the input, never copies', () => {
    const ev = new Events();
    const parser = new ResponseParser(ev);
    parser.expect(false);
    const head = bytes('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n01234');
    const tail = bytes('56789');
    parser.execute(head);
    parser.execute(tail);
    assert.equal(ev.chunks[0].buffer, head.buffer);
    assert.equal(ev.chunks[0].byteOffset, head.byteOffset + head.length - 5);
    assert.equal(ev.chunks[1].buffer, tail.buffer);
    assert.equal(ev.body, '0123456789');
  });
  it('accepts repeated identical values, in separate fields or a list', () => {
    assert.equal(feed('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok').ev.body, 'ok');
    assert.equal(feed('HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\n\r\nok').ev.body, 'ok');
  });
  it('rejects conflicting values', () => {
    assert.throws(
      () => feed('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok'),
      /conflicting/,
    );
    assert.throws(() => feed('HTTP/1.1 200 OK\r\nContent-Length: 2, 3\r\n\r\nok'), ParseError);
  });
  it('rejects non-numeric values (sign, hex, empty, inner space)', () => {
    for (const v of ['+5', '-1', '0x10', '', '1 2', '5a']) {
      assert.throws(() => feed(`HTTP/1.1 200 OK\r\nContent-Length: ${v}\r\n\r\n`), ParseError, v);
    }
  });
  it('rejects a length beyond Number.MAX_SAFE_INTEGER and accepts one at it', () => {
    assert.throws(() => feed('HTTP/1.1 200 OK\r\nContent-Length: 9007199254740992\r\n\r\n'), /too large/);
    assert.equal(feed('HTTP/1.1 200 OK\r\nContent-Length: 9007199254740991\r\n\r\nabc').ev.body, 'abc');
  });
});

describe('ResponseParser: Transfer-Encoding', () => {
  const CHUNKED = 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n';

  it('decodes chunks into views of the input and completes without trailers', () => {
    const { ev, leftover } = feed(`${CHUNKED}5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n`);
    assert.equal(ev.body, 'hello world');
    assert.deepEqual(ev.done, { trailers: undefined, reusable: true });
    assert.equal(leftover, 0);
  });
  it('parses hex sizes in either case and across every split point', () => {
    const msg = `${CHUNKED}A\r\n0123456789\r\na;x=y\r\nabcdefghij\r\n0\r\n\r\n`;
    for (const pieces of splitEverywhere(msg)) {
      const { ev } = feed(pieces);
      assert.equal(ev.body, '0123456789abcdefghij', JSON.stringify(pieces));
      assert.equal(ev.done?.reusable, true);
    }
  });
  it('collects trailer fields (repeats as arrays, names lowercased)', () => {
    const { ev } = feed(`${CHUNKED}2\r\nok\r\n0\r\nX-Sum: 1\r\nx-sum: 2\r\nServer-Timing: a;dur=1\r\n\r\n`);
    assert.deepEqual(ev.done?.trailers, { 'x-sum': ['1', '2'], 'server-timing': 'a;dur=1' });
  });
  it('needs the final CRLF after trailers before completing', () => {
    const { ev, parser } = feed(`${CHUNKED}0\r\nX: 1\r\n`);
    assert.equal(ev.done, undefined);
    assert.throws(() => parser.finish(), /trailer/);
  });
  it('accepts chunk extensions (token and quoted values, BWS before ;)', () => {
    const { ev } = feed(`${CHUNKED}5 ;a=b;c="x;\\"y";d\r\nhello\r\n0;e\r\n\r\n`);
    assert.equal(ev.body, 'hello');
  });
  for (const [what, line] of [
    ['trailing spaces after the size', '5  \r\n'],
    ['text without a semicolon', '5 abc\r\n'],
    ['an empty extension name', '5;\r\n'],
    ['an unbalanced quote', '5;a="x\r\n'],
    ['no hex digits', 'x\r\n'],
    ['a bare LF after the size', '5\n'],
    ['a negative size', '-5\r\n'],
  ]) {
    it(`rejects a chunk-size line with ${what}`, () => {
      assert.throws(() => feed(`${CHUNKED}${line}hello\r\n0\r\n\r\n`), ParseError);
    });
  }
  it('rejects a chunk size beyond 2^53 (overflow guard) and accepts a 13-hex-digit size', () => {
    assert.throws(() => feed(`${CHUNKED}20000000000000\r\n`), /too large/);
    assert.throws(() => feed(`${CHUNKED}ffffffffffffffffffff\r\n`), /too large/);
    const { ev } = feed(`${CHUNKED}fffffffffffff\r\nabc`);
    assert.equal(ev.body, 'abc');
  });
  it('rejects a chunk-size line longer than 16 KiB of extensions', () => {
    assert.throws(() => feed(`${CHUNKED}1;a=${'b'.repeat(17000)}\r\n`), /too long/);
  });
  it('requires CRLF right after chunk data', () => {
    assert.throws(() => feed(`${CHUNKED}5\r\nhelloX\r\n0\r\n\r\n`), /CRLF after chunk data/);
    assert.throws(() => feed(`${CHUNKED}5\r\nhello\rX0\r\n\r\n`), /CRLF after chunk data/);
    assert.throws(() => feed([`${CHUNKED}5\r\nhello\r`, '\r\n']), ParseError);
  });
  it('uses chunked and ignores Content-Length when both are present, but marks it not reusable', () => {
    const { ev } = feed(
      'HTTP/1.1 200 OK\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n',
    );
    assert.equal(ev.body, 'ok');
    assert.deepEqual(ev.done, { trailers: undefined, reusable: false });
  });
  it('treats chunked case-insensitively, and as the final coding of a list', () => {
    assert.equal(
      feed('HTTP/1.1 200 OK\r\nTransfer-Encoding: CHUNKED\r\n\r\n1\r\nx\r\n0\r\n\r\n').ev.done?.reusable,
      true,
    );
    const { ev } = feed(
      'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n',
    );
    assert.equal(ev.body, 'x');
  });
  for (const te of ['chunked, gzip', 'chunkedchunked', 'identity', '']) {
    it(`reads the body until close when Transfer-Encoding is ${JSON.stringify(te)}`, () => {
      const { ev, parser } = feed(`HTTP/1.1 200 OK\r\nTransfer-Encoding: ${te}\r\n\r\n1\r\nx\r\n0\r\n\r\n`);
      assert.equal(ev.done, undefined);
      parser.finish();
      assert.equal(ev.body, '1\r\nx\r\n0\r\n\r\n');
      assert.deepEqual(ev.done, { trailers: undefined, reusable: false });
    });
  }
  for (const fields of [
    'Transfer-Encoding: chunked, chunked',
    'Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked',
    'Transfer-Encoding: Chunked ,CHUNKED',
    'Transfer-Encoding: chunked, gzip, chunked',
    'Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip, chunked',
    'Transfer-Encoding: chunked, chunked\r\nContent-Length: 5',
  ]) {
    it(`refuses chunked applied twice (RFC 9112 §6.1): ${JSON.stringify(fields)}`, () => {
      const ev = new Events();
      const parser = new ResponseParser(ev);
      parser.expect(false);
      assert.throws(
        () => parser.execute(bytes(`HTTP/1.1 200 OK\r\n${fields}\r\n\r\n5\r\nhello\r\n0\r\n\r\n`)),
        (err: unknown) =>
          err instanceof ParseError &&
          err.code === 'WARMPOOL_PARSE_ERROR' &&
          /chunked 2 times/.test(err.message),
      );
      assert.deepEqual(ev.order, [], 'a head was delivered');
    });
  }
  it('a response without content is not framed, so chunked twice on a 304 or a HEAD is not refused', () => {
    // As llhttp (the corpus case connection.md:537): nothing is read after such a head.
    const twice = 'Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n';
    assert.deepEqual(feed(`HTTP/1.1 304 Not Modified\r\n${twice}`).ev.order, ['head 304', 'complete']);
    assert.deepEqual(feed(`HTTP/1.1 200 OK\r\n${twice}`, { head: true }).ev.order, ['head 200', 'complete']);
  });
  it('marks an HTTP/1.0 chunked response not reusable (RFC 9112 §6.1: faulty framing)', () => {
    const { ev } = feed(
      'HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
    );
    assert.equal(ev.head?.keepAlive, true);
    assert.equal(ev.done?.reusable, false);
  });
});

describe('ResponseParser: persistence', () => {
  const head = (v: string, fields = '') => `HTTP/${v} 200 OK\r\n${fields}Content-Length: 0\r\n\r\n`;

  it('HTTP/1.1 persists by default', () => {
    const { ev } = feed(head('1.1'));
    assert.equal(ev.head?.keepAlive, true);
    assert.equal(ev.done?.reusable, true);
  });
  it('HTTP/1.1 with Connection: close does not persist', () => {
    const { ev } = feed(head('1.1', 'Connection: Close\r\n'));
    assert.equal(ev.head?.keepAlive, false);
    assert.equal(ev.done?.reusable, false);
  });
  it('Connection: keep-alive, close means close (in one field or two)', () => {
    assert.equal(feed(head('1.1', 'Connection: keep-alive, close\r\n')).ev.head?.keepAlive, false);
    assert.equal(
      feed(head('1.1', 'Connection: keep-alive\r\nConnection: close\r\n')).ev.head?.keepAlive,
      false,
    );
    assert.equal(feed(head('1.0', 'Connection: keep-alive, close\r\n')).ev.head?.keepAlive, false);
  });
  it('Connection tokens are matched whole, not as substrings', () => {
    assert.equal(feed(head('1.1', 'Connection: closed, upgrade\r\n')).ev.head?.keepAlive, true);
  });
  it('HTTP/1.0 persists only with Connection: keep-alive', () => {
    const a = feed(head('1.0'));
    assert.equal(a.ev.head?.keepAlive, false);
    assert.equal(a.ev.done?.reusable, false);
    assert.equal(a.ev.head?.httpVersion, '1.0');
    const b = feed(head('1.0', 'Connection: Keep-Alive\r\n'));
    assert.equal(b.ev.head?.keepAlive, true);
    assert.equal(b.ev.done?.reusable, true);
  });
  it('ignores Proxy-Connection (persistence follows Connection only)', () => {
    assert.equal(feed(head('1.1', 'Proxy-Connection: close\r\n')).ev.done?.reusable, true);
  });
  it('parses Keep-Alive timeout (seconds to ms) and max', () => {
    const { ev } = feed(head('1.1', 'Keep-Alive: timeout=5, max=100\r\n'));
    assert.equal(ev.head?.keepAliveTimeoutMs, 5000);
    assert.equal(ev.head?.keepAliveMax, 100);
  });
  it('parses Keep-Alive parameters case-insensitively with spaces, quotes and semicolons', () => {
    const { ev } = feed(head('1.1', 'Keep-Alive: MAX = 7 ;  Timeout="3"\r\n'));
    assert.equal(ev.head?.keepAliveTimeoutMs, 3000);
    assert.equal(ev.head?.keepAliveMax, 7);
  });
  it('leaves Keep-Alive values undefined when absent or invalid', () => {
    assert.equal(feed(head('1.1')).ev.head?.keepAliveTimeoutMs, undefined);
    const { ev } = feed(head('1.1', 'Keep-Alive: timeout=-1, max=abc, timeout2=4\r\n'));
    assert.equal(ev.head?.keepAliveTimeoutMs, undefined);
    assert.equal(ev.head?.keepAliveMax, undefined);
  });
  it('a body delimited by close is never reusable', () => {
    const { ev, parser } = feed('HTTP/1.1 200 OK\r\n\r\nabc');
    parser.finish();
    assert.equal(ev.body, 'abc');
    assert.deepEqual(ev.done, { trailers: undefined, reusable: false });
  });
});

describe('ResponseParser: lifecycle', () => {
  it('busy is true from expect() until onComplete; receivedAny after the first byte', () => {
    const ev = new Events();
    const parser = new ResponseParser(ev);
    assert.equal(parser.busy, false);
    parser.expect(false);
    assert.equal(parser.busy, true);
    assert.equal(parser.receivedAny, false);
    parser.execute(bytes('H'));
    assert.equal(parser.receivedAny, true);
    parser.execute(bytes('TTP/1.1 204 X\r\n\r\n'));
    assert.equal(parser.busy, false);
    parser.expect(false);
    assert.equal(parser.receivedAny, false);
  });
  it('returns 0 from execute() when no response is expected', () => {
    const parser = new ResponseParser(new Events());
    assert.equal(parser.execute(bytes('HTTP/1.1 200 OK\r\n\r\n')), 0);
  });
  it('lets the handler re-arm from inside onComplete (pipelining) and parse the leftover', () => {
    const seen: number[] = [];
    const handler: ResponseParserHandler = {
      onInformation() {},
      onHead(h) {
        seen.push(h.statusCode);
      },
      onBody() {},
      onComplete() {
        if (seen.length < 2) parser.expect(false);
      },
    };
    const parser = new ResponseParser(handler);
    parser.expect(false);
    const data = bytes(
      'HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\naHTTP/1.1 201 OK\r\nContent-Length: 1\r\n\r\nb',
    );
    const n = parser.execute(data);
    assert.equal(parser.busy, true);
    assert.equal(parser.execute(data.subarray(n)), data.length - n);
    assert.deepEqual(seen, [200, 201]);
  });
  it('finish() does nothing when idle or when nothing has arrived', () => {
    const parser = new ResponseParser(new Events());
    parser.finish();
    parser.expect(false);
    parser.finish();
    assert.equal(parser.busy, true);
  });
  it('finish() reports a partial head', () => {
    const { parser } = feed('HTTP/1.1 200 OK\r\nContent-');
    assert.throws(
      () => parser.finish(),
      (e: unknown) =>
        e instanceof SocketClosedError && /before the response head was complete/.test(e.message),
    );
  });
  it('finish() says how much of a Content-Length body arrived', () => {
    const { parser } = feed('HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\nhello');
    assert.throws(() => parser.finish(), {
      name: 'SocketClosedError',
      message: 'connection closed after 5 of 11 body bytes',
    });
  });
  it('finish() reports a chunked body cut short, at a size line and inside data', () => {
    assert.throws(
      () => feed('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel').parser.finish(),
      /chunked/,
    );
    assert.throws(
      () => feed('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n').parser.finish(),
      /chunked/,
    );
  });
  it('lets a handler exception propagate and leaves the parser dead', () => {
    const parser = new ResponseParser({
      onInformation() {},
      onHead() {
        throw new Error('boom');
      },
      onBody() {},
      onComplete() {},
    });
    parser.expect(false);
    assert.throws(() => parser.execute(bytes('HTTP/1.1 200 OK\r\n\r\n')), /boom/);
    assert.throws(() => parser.execute(bytes('x')), ParseError);
    assert.throws(() => parser.expect(false), ParseError);
  });
  it('reports parse errors with the stable WARMPOOL_PARSE_ERROR code', () => {
    assert.throws(() => feed('HTP/1.1 200 OK\r\n\r\n'), { code: 'WARMPOOL_PARSE_ERROR' });
  });
  it('does not keep a large pending-line buffer after a long header line', () => {
    const ev = new Events();
    const parser = new ResponseParser(ev);
    parser.expect(false);
    parser.execute(bytes(`HTTP/1.1 200 OK\r\nX: ${'a'.repeat(10000)}`));
    parser.execute(bytes('\r\nContent-Length: 0\r\n\r\n'));
    assert.equal(ev.head?.headers.x, 'a'.repeat(10000));
    assert.equal((parser as unknown as { pend: Buffer | undefined }).pend, undefined);
  });
});
