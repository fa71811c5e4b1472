import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InvalidArgumentError } from '../src/errors.js';
import {
  BODY_CHUNKED,
  BODY_NONE,
  CHUNKED_TERMINATOR,
  CRLF,
  chunkSizeLine,
  encodeChunk,
  encodeRequestHead,
} from '../src/h1/request-head.js';

function invalid(fn: () => unknown, mentions: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof InvalidArgumentError, `expected InvalidArgumentError, got ${String(e)}`);
    assert.equal(e.code, 'WARMPOOL_INVALID_ARGUMENT');
    assert.match(e.message, mentions);
    return true;
  });
}

describe('encodeRequestHead: serialization', () => {
  it('a head without headers or body reused for the same request is the head of that request', () => {
    // Plain heads are kept and handed out again (see encodeRequestHead): whatever differs must not
    // get the kept one.
    const head = (method: string, path: string, host: string, serialize = true) =>
      encodeRequestHead(method, path, host, undefined, BODY_NONE, serialize).head;
    assert.equal(head('GET', '/a', 'h:1'), 'GET /a HTTP/1.1\r\nhost: h:1\r\n\r\n');
    assert.equal(head('GET', '/a', 'h:1'), 'GET /a HTTP/1.1\r\nhost: h:1\r\n\r\n');
    assert.equal(head('GET', '/b', 'h:1'), 'GET /b HTTP/1.1\r\nhost: h:1\r\n\r\n');
    assert.equal(head('GET', '/b', 'h:2'), 'GET /b HTTP/1.1\r\nhost: h:2\r\n\r\n');
    assert.equal(head('HEAD', '/b', 'h:2'), 'HEAD /b HTTP/1.1\r\nhost: h:2\r\n\r\n');
    assert.equal(head('HEAD', '/b', 'h:2', false), '');
    assert.equal(head('HEAD', '/b', 'h:2'), 'HEAD /b HTTP/1.1\r\nhost: h:2\r\n\r\n');
    // Still validated: an invalid path after a valid one is refused, not served from the kept head.
    invalid(() => head('GET', '/b c', 'h:2'), /path/);
    invalid(() => head('GET', '/b', 'h\r\n:2'), /host/);
  });

  it('headers that cannot change (frozen) reuse the kept head; headers that can are encoded anew each time', () => {
    const fixed = Object.freeze([Object.freeze(['accept', '*/*'] as const)]);
    const first = encodeRequestHead('GET', '/a', 'h:1', fixed, BODY_NONE);
    assert.equal(first.head, 'GET /a HTTP/1.1\r\nhost: h:1\r\naccept: */*\r\n\r\n');
    assert.equal(encodeRequestHead('GET', '/a', 'h:1', fixed, BODY_NONE), first, 'the kept head');
    // Another object with the same fields, or a different path, is not the kept head's request.
    const other = Object.freeze([Object.freeze(['accept', 'text/plain'] as const)]);
    assert.match(encodeRequestHead('GET', '/a', 'h:1', other, BODY_NONE).head, /accept: text\/plain/);
    assert.match(encodeRequestHead('GET', '/b', 'h:1', fixed, BODY_NONE).head, /^GET \/b /);
    // Lookalikes in every other part of the key: host (port), method, serialized or not.
    assert.match(encodeRequestHead('GET', '/a', 'h:2', fixed, BODY_NONE).head, /host: h:2\r\n/);
    assert.match(encodeRequestHead('HEAD', '/a', 'h:2', fixed, BODY_NONE).head, /^HEAD \/a /);
    assert.equal(encodeRequestHead('HEAD', '/a', 'h:2', fixed, BODY_NONE, false).head, '');
    assert.match(encodeRequestHead('HEAD', '/a', 'h:2', fixed, BODY_NONE).head, /^HEAD \/a /);
    // An absolute-form target (a proxy) is another request line, not the origin-form one.
    assert.match(
      encodeRequestHead('GET', 'http://h:1/a', 'h:1', fixed, BODY_NONE).head,
      /^GET http:\/\/h:1\/a /,
    );
    // A body is never served from the kept head: its framing header is added.
    assert.match(encodeRequestHead('GET', '/a', 'h:1', fixed, 3).head, /content-length: 3\r\n/);
    // A mutable array is encoded every time: a change between two requests is sent.
    const mutable: Array<[string, string]> = [['accept', '*/*']];
    assert.match(encodeRequestHead('GET', '/a', 'h:1', mutable, BODY_NONE).head, /accept: \*\/\*/);
    mutable[0]![1] = 'application/json';
    assert.match(encodeRequestHead('GET', '/a', 'h:1', mutable, BODY_NONE).head, /accept: application\/json/);
    // A frozen array of pairs that are not frozen can change too.
    const pair: [string, string] = ['x-a', '1'];
    const shallow = Object.freeze([pair]);
    encodeRequestHead('GET', '/a', 'h:1', shallow, BODY_NONE);
    pair[1] = '2';
    assert.match(encodeRequestHead('GET', '/a', 'h:1', shallow, BODY_NONE).head, /x-a: 2/);
    // Frozen headers with an invalid value are refused every time, never kept.
    const bad = Object.freeze([Object.freeze(['x-a', 'a\r\nb'] as const)]);
    invalid(() => encodeRequestHead('GET', '/a', 'h:1', bad, BODY_NONE), /x-a/);
    invalid(() => encodeRequestHead('GET', '/a', 'h:1', bad, BODY_NONE), /x-a/);
  });

  it('writes request line, host first, caller headers in order, and ends with CRLFCRLF', () => {
    const r = encodeRequestHead(
      'GET',
      '/a?b=1',
      'example.com',
      { accept: 'text/html', 'X-Num': 5 },
      BODY_NONE,
    );
    assert.equal(r.head, 'GET /a?b=1 HTTP/1.1\r\nhost: example.com\r\naccept: text/html\r\nX-Num: 5\r\n\r\n');
    assert.equal(r.bodyLength, BODY_NONE);
    assert.equal(r.connectionClose, false);
  });
  it('does not add host when the caller gave one (any case)', () => {
    const r = encodeRequestHead('GET', '/', 'example.com', { Host: 'other:8080' }, BODY_NONE);
    assert.equal(r.head, 'GET / HTTP/1.1\r\nHost: other:8080\r\n\r\n');
  });
  it('rejects more than one host header', () => {
    invalid(() => encodeRequestHead('GET', '/', 'h', { host: ['a', 'b'] }, BODY_NONE), /host/);
  });
  it('writes array values as repeated lines and skips undefined', () => {
    const r = encodeRequestHead('GET', '/', 'h', { cookie: ['a=1', 'b=2'], skip: undefined }, BODY_NONE);
    assert.equal(r.head, 'GET / HTTP/1.1\r\nhost: h\r\ncookie: a=1\r\ncookie: b=2\r\n\r\n');
  });
  it('accepts an iterable of [name, value] pairs (e.g. a Map or an array of pairs)', () => {
    const pairs: [string, string][] = [
      ['a', '1'],
      ['a', '2'],
    ];
    assert.equal(
      encodeRequestHead('GET', '/', 'h', pairs, BODY_NONE).head,
      'GET / HTTP/1.1\r\nhost: h\r\na: 1\r\na: 2\r\n\r\n',
    );
    const map = new Map([['b', '3']]);
    assert.equal(
      encodeRequestHead('GET', '/', 'h', map, BODY_NONE).head,
      'GET / HTTP/1.1\r\nhost: h\r\nb: 3\r\n\r\n',
    );
  });
  it('keeps latin1 obs-text in values', () => {
    assert.match(encodeRequestHead('GET', '/', 'h', { x: 'caf\xe9' }, BODY_NONE).head, /x: caf\xe9\r\n/);
  });
  it('accepts absolute-form and asterisk-form targets', () => {
    assert.ok(
      encodeRequestHead('OPTIONS', '*', 'h', undefined, BODY_NONE).head.startsWith('OPTIONS * HTTP/1.1'),
    );
    assert.ok(
      encodeRequestHead('GET', 'http://h/x', 'h', undefined, BODY_NONE).head.startsWith('GET http://h/x '),
    );
  });
});

describe('encodeRequestHead: framing', () => {
  it('adds content-length for a known body length, including 0', () => {
    const r = encodeRequestHead('POST', '/', 'h', undefined, 12);
    assert.equal(r.head, 'POST / HTTP/1.1\r\nhost: h\r\ncontent-length: 12\r\n\r\n');
    assert.equal(r.bodyLength, 12);
    assert.match(encodeRequestHead('POST', '/', 'h', undefined, 0).head, /content-length: 0\r\n/);
  });
  it("uses the caller's identical content-length instead of adding a second one", () => {
    const r = encodeRequestHead('POST', '/', 'h', { 'Content-Length': '12' }, 12);
    assert.equal(r.head, 'POST / HTTP/1.1\r\nhost: h\r\nContent-Length: 12\r\n\r\n');
  });
  it("rejects a caller content-length that differs from the body's length", () => {
    invalid(() => encodeRequestHead('POST', '/', 'h', { 'content-length': 11 }, 12), /content-length/);
  });
  it('rejects conflicting or malformed caller content-length headers', () => {
    invalid(
      () => encodeRequestHead('POST', '/', 'h', { 'content-length': ['1', '2'] }, BODY_CHUNKED),
      /conflicting/,
    );
    invalid(
      () => encodeRequestHead('POST', '/', 'h', { 'content-length': '-1' }, BODY_CHUNKED),
      /content-length/,
    );
    invalid(
      () => encodeRequestHead('POST', '/', 'h', { 'content-length': '1e3' }, BODY_CHUNKED),
      /content-length/,
    );
  });
  it('adds transfer-encoding: chunked for a body of unknown length', () => {
    const r = encodeRequestHead('POST', '/', 'h', undefined, BODY_CHUNKED);
    assert.equal(r.head, 'POST / HTTP/1.1\r\nhost: h\r\ntransfer-encoding: chunked\r\n\r\n');
    assert.equal(r.bodyLength, BODY_CHUNKED);
  });
  it('sends an unknown-length body with the caller-supplied content-length instead of chunking it', () => {
    const r = encodeRequestHead('PUT', '/', 'h', { 'content-length': '100' }, BODY_CHUNKED);
    assert.equal(r.head, 'PUT / HTTP/1.1\r\nhost: h\r\ncontent-length: 100\r\n\r\n');
    assert.equal(r.bodyLength, 100);
  });
  it('adds no framing header without a body, and rejects a non-zero caller content-length then', () => {
    assert.equal(
      encodeRequestHead('GET', '/', 'h', undefined, BODY_NONE).head,
      'GET / HTTP/1.1\r\nhost: h\r\n\r\n',
    );
    assert.equal(encodeRequestHead('POST', '/', 'h', { 'content-length': '0' }, BODY_NONE).bodyLength, 0);
    invalid(() => encodeRequestHead('POST', '/', 'h', { 'content-length': '3' }, BODY_NONE), /no body/);
  });
  it('rejects a caller transfer-encoding header', () => {
    invalid(
      () => encodeRequestHead('POST', '/', 'h', { 'Transfer-Encoding': 'chunked' }, BODY_CHUNKED),
      /transfer-encoding/,
    );
  });
  it('rejects invalid body lengths', () => {
    invalid(() => encodeRequestHead('POST', '/', 'h', undefined, -3), /body length/);
    invalid(() => encodeRequestHead('POST', '/', 'h', undefined, 1.5), /body length/);
    invalid(() => encodeRequestHead('POST', '/', 'h', undefined, Number.NaN), /body length/);
  });
});

describe('encodeRequestHead: connection management', () => {
  it('reports a caller Connection: close and keeps the header', () => {
    const r = encodeRequestHead('GET', '/', 'h', { connection: 'Close' }, BODY_NONE);
    assert.equal(r.connectionClose, true);
    assert.match(r.head, /connection: Close\r\n/);
    assert.equal(
      encodeRequestHead('GET', '/', 'h', { Connection: 'keep-alive, close' }, BODY_NONE).connectionClose,
      true,
    );
  });
  it('allows Connection: keep-alive without reporting close', () => {
    assert.equal(
      encodeRequestHead('GET', '/', 'h', { connection: 'keep-alive' }, BODY_NONE).connectionClose,
      false,
    );
  });
  it('rejects protocol upgrades (Connection: upgrade, Upgrade header)', () => {
    invalid(() => encodeRequestHead('GET', '/', 'h', { Connection: 'Upgrade' }, BODY_NONE), /upgrade/i);
    invalid(() => encodeRequestHead('GET', '/', 'h', { upgrade: 'websocket' }, BODY_NONE), /upgrade/i);
  });
});

describe('encodeRequestHead: injection attempts are refused before anything is written', () => {
  it('rejects CR or LF in a header value (header injection / request smuggling)', () => {
    invalid(() => encodeRequestHead('GET', '/', 'h', { 'x-a': 'v\r\nInjected: 1' }, BODY_NONE), /x-a/);
    invalid(() => encodeRequestHead('GET', '/', 'h', { 'x-a': 'v\nx' }, BODY_NONE), /x-a/);
    invalid(() => encodeRequestHead('GET', '/', 'h', { 'x-a': 'v\rx' }, BODY_NONE), /x-a/);
    invalid(
      () => encodeRequestHead('GET', '/', 'h', [['x-b', 'a\r\n\r\nGET /evil HTTP/1.1']], BODY_NONE),
      /x-b/,
    );
  });
  it('rejects NUL and other control characters in a value, in any array element', () => {
    invalid(() => encodeRequestHead('GET', '/', 'h', { 'x-a': 'v\0' }, BODY_NONE), /x-a/);
    invalid(() => encodeRequestHead('GET', '/', 'h', { 'x-a': ['ok', 'bad\x01'] }, BODY_NONE), /x-a/);
  });
  it('rejects code points above 0xFF, which latin1 would truncate into CR/LF', () => {
    invalid(() => encodeRequestHead('GET', '/', 'h', { 'x-a': 'a\u010d\u010aX: y' }, BODY_NONE), /x-a/);
    invalid(() => encodeRequestHead('GET', '/\u010a', 'h', undefined, BODY_NONE), /path/);
  });
  it('rejects header names that are not tokens (space, colon, CRLF, empty, non-ASCII)', () => {
    for (const name of ['x a', 'x:a', 'x\r\ny', '', 'caf\xe9', 'x\ty', '(x)']) {
      invalid(() => encodeRequestHead('GET', '/', 'h', { [name]: 'v' }, BODY_NONE), /header name/);
    }
  });
  it('rejects a path with a space, a control character, DEL, non-ASCII, or nothing', () => {
    for (const p of ['/a b', '/a\r\nHost: x', '/a\tb', '/\x7f', '/caf\xe9', '']) {
      invalid(() => encodeRequestHead('GET', p, 'h', undefined, BODY_NONE), /path/);
    }
  });
  it('rejects a method that is not a token', () => {
    for (const m of ['', 'GET /', 'GE\r\nT', 'G(T']) {
      invalid(() => encodeRequestHead(m, '/', 'h', undefined, BODY_NONE), /method/);
    }
  });
  it('rejects an invalid host', () => {
    invalid(() => encodeRequestHead('GET', '/', 'a\r\nb', undefined, BODY_NONE), /host/);
    invalid(() => encodeRequestHead('GET', '/', '', undefined, BODY_NONE), /host/);
    invalid(() => encodeRequestHead('GET', '/', 'a b', undefined, BODY_NONE), /host/);
  });
  it('rejects header values of unsupported types', () => {
    invalid(
      () =>
        encodeRequestHead('GET', '/', 'h', { x: { a: 1 } } as unknown as Record<string, string>, BODY_NONE),
      /x/,
    );
  });
});

describe('chunked body encoding', () => {
  it('produces the size line, the same data object (no copy) and CRLF', () => {
    const data = new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17]);
    const parts = encodeChunk(data);
    assert.equal(parts.length, 3);
    assert.equal(Buffer.from(parts[0]).toString('latin1'), '11\r\n');
    assert.equal(parts[1], data);
    assert.equal(Buffer.from(parts[2]).toString('latin1'), '\r\n');
  });
  it('encodes an empty chunk as nothing, since a zero-size chunk would end the body', () => {
    assert.deepEqual(encodeChunk(new Uint8Array(0)), []);
  });
  it('exposes the size line, CRLF and terminator', () => {
    assert.equal(chunkSizeLine(255), 'ff\r\n');
    assert.equal(CRLF, '\r\n');
    assert.equal(CHUNKED_TERMINATOR, '0\r\n\r\n');
  });
});
