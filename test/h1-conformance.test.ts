/**
 * Every case of the shared HTTP/1.1 response corpus, fed to ResponseParser directly three ways
 * (whole, one byte per execute(), split at 20 seeded-random points), checked against what a client
 * must make of it (helpers/conformance-cases.ts). Deviations from llhttp are stated per case.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ParseError, SocketClosedError, UnsupportedError } from '../src/errors.js';
import { type ResponseHead, ResponseParser, type ResponseParserHandler } from '../src/h1/parser.js';
import type { IncomingHeaders } from '../src/headers.js';
import {
  type ConformanceCase,
  DEVIATIONS,
  type InterimResponse,
  type ObservedOutcome,
  type WireMessage,
  expectedClientOutcome,
  llhttpClientOutcome,
  loadConformanceCases,
  repoRootFrom,
  toIncomingHeaders,
} from './helpers/conformance-cases.js';
import { prng } from './helpers/prng.js';

const cases = loadConformanceCases(repoRootFrom(import.meta.url));

function seedOf(id: string): number {
  let h = 2166136261;
  for (let i = 0; i < id.length; i++) h = Math.imul(h ^ id.charCodeAt(i), 16777619);
  return h >>> 0;
}

function whole(input: Buffer): Buffer[] {
  return [input];
}

function bytewise(input: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < input.length; i++) out.push(input.subarray(i, i + 1));
  return out;
}

function randomSplits(input: Buffer, seed: number, count = 20): Buffer[] {
  const rnd = prng(seed);
  const points = new Set<number>();
  for (let i = 0; i < count * 4 && points.size < Math.min(count, input.length - 1); i++) {
    points.add(1 + Math.floor(rnd() * (input.length - 1)));
  }
  const sorted = [...points].sort((x, y) => x - y);
  const out: Buffer[] = [];
  let prev = 0;
  for (const p of sorted) {
    out.push(input.subarray(prev, p));
    prev = p;
  }
  out.push(input.subarray(prev));
  return out;
}

class Recorder implements ResponseParserHandler {
  informational: InterimResponse[] = [];
  head: ResponseHead | undefined;
  chunks: Buffer[] = [];
  completed = false;
  trailers: IncomingHeaders | undefined;
  reusable = false;
  /** The input piece being executed, to prove body chunks are views of it, not copies. */
  current: Buffer | undefined;

  onInformation(head: ResponseHead): void {
    this.informational.push({ status: head.statusCode, headers: { ...head.headers } });
  }
  onHead(head: ResponseHead): void {
    assert.equal(this.head, undefined, 'onHead called twice');
    this.head = head;
  }
  onBody(data: Buffer, start: number, end: number): void {
    assert.ok(end > start, 'empty body chunk');
    assert.equal(data, this.current, 'body chunk is not a range of the input');
    this.chunks.push(data.subarray(start, end));
  }
  onComplete(trailers: IncomingHeaders | undefined, reusable: boolean): void {
    this.completed = true;
    this.trailers = trailers;
    this.reusable = reusable;
  }
}

function classify(err: unknown): 'parse' | 'unsupported' {
  if (err instanceof UnsupportedError) return 'unsupported';
  if (err instanceof ParseError) return 'parse';
  throw err;
}

/** Drive one request's worth of parsing over `pieces` and report what a client would see. */
function observe(c: ConformanceCase, pieces: Buffer[]): ObservedOutcome {
  const rec = new Recorder();
  const parser = new ResponseParser(rec);
  parser.expect(c.requestMethod === 'HEAD');
  assert.equal(parser.busy, true);
  assert.equal(parser.receivedAny, false);

  let failure: 'parse' | 'unsupported' | 'socket-closed' | undefined;
  let leftover = 0;
  let ending: 'complete' | 'eof' | undefined;
  let i = 0;
  try {
    for (; i < pieces.length; i++) {
      const piece = pieces[i];
      rec.current = piece;
      const consumed = parser.execute(piece);
      if (rec.completed) {
        ending = 'complete';
        leftover = piece.length - consumed;
        for (let j = i + 1; j < pieces.length; j++) leftover += pieces[j].length;
        break;
      }
      assert.equal(consumed, piece.length, 'bytes left unconsumed before the message ended');
      assert.equal(parser.receivedAny, piece.length > 0 || parser.receivedAny);
    }
    if (ending === undefined) {
      parser.finish();
      if (rec.completed) ending = 'eof';
      else failure = 'socket-closed'; // closed before any byte: finish() has nothing to complete
    }
  } catch (err) {
    failure = err instanceof SocketClosedError ? 'socket-closed' : classify(err);
  }
  if (rec.completed) assert.equal(parser.busy, false);

  const head = rec.head;
  if (head === undefined) {
    assert.notEqual(failure, undefined);
    return { kind: 'error', error: failure!, informational: rec.informational };
  }
  const bodyEnd = ending ?? (failure === 'socket-closed' ? 'truncated' : 'parse-error');
  return {
    kind: 'response',
    informational: rec.informational,
    status: head.statusCode,
    statusText: head.statusText,
    httpVersion: head.httpVersion,
    headers: { ...head.headers },
    body: Buffer.concat(rec.chunks),
    trailers: rec.trailers === undefined ? undefined : { ...rec.trailers },
    bodyEnd,
    // The connection layer adds its own condition: unsolicited bytes after the response.
    reusable: ending === 'complete' && rec.reusable && leftover === 0,
  };
}

/**
 * Pipelined view: re-arm after each response that leaves the connection reusable, and collect every
 * message, to compare with all of llhttp's messages (not just the first final one).
 */
function observeStream(c: ConformanceCase): { messages: WireMessage[]; error: boolean } {
  const messages: WireMessage[] = [];
  let data = c.input;
  let rec = new Recorder();
  const handler: ResponseParserHandler = {
    onInformation: (h) => {
      messages.push(toWire(h, [], undefined, 'complete'));
    },
    onHead: (h) => rec.onHead(h),
    onBody: (d, s, e) => rec.chunks.push(d.subarray(s, e)),
    onComplete: (t, r) => rec.onComplete(t, r),
  };
  const parser = new ResponseParser(handler);
  const flush = (ending: WireMessage['ending']) => {
    if (rec.head !== undefined) messages.push(toWire(rec.head, rec.chunks, rec.trailers, ending));
  };
  for (;;) {
    rec = new Recorder();
    parser.expect(c.requestMethod === 'HEAD');
    try {
      const consumed = parser.execute(data);
      if (!rec.completed) {
        parser.finish();
        flush(rec.completed ? 'eof' : 'truncated');
        return { messages, error: false };
      }
      flush('complete');
      data = data.subarray(consumed);
      if (data.length === 0) return { messages, error: false };
      // Bytes after a response that ends the connection: llhttp reports them as an error too.
      if (!rec.reusable) return { messages, error: true };
    } catch (err) {
      if (err instanceof SocketClosedError) {
        flush('truncated');
        return { messages, error: false };
      }
      classify(err);
      flush('truncated');
      return { messages, error: true };
    }
  }
}

function toWire(
  head: ResponseHead,
  chunks: Buffer[],
  trailers: IncomingHeaders | undefined,
  ending: WireMessage['ending'],
): WireMessage {
  const fields = (h: IncomingHeaders | undefined): [string, string][] => {
    const out: [string, string][] = [];
    for (const [k, v] of Object.entries(h ?? {})) {
      for (const one of typeof v === 'string' ? [v] : v) out.push([k, one]);
    }
    return out;
  };
  return {
    status: head.statusCode,
    version: head.httpVersion,
    statusText: head.statusText,
    headers: fields(head.headers),
    trailers: fields(trailers),
    body: Buffer.concat(chunks),
    ending,
  };
}

/** llhttp's messages with names lowercased and OWS trimmed, fields grouped by name like IncomingHeaders. */
function normalizeLlhttp(m: WireMessage): WireMessage {
  const group = (f: [string, string][]) => {
    const out: [string, string][] = [];
    for (const [k, v] of Object.entries(toIncomingHeaders(f))) {
      for (const one of typeof v === 'string' ? [v] : v) out.push([k, one]);
    }
    return out;
  };
  return { ...m, headers: group(m.headers), trailers: group(m.trailers) };
}

describe('HTTP/1.1 response conformance corpus (llhttp 9.4.2)', () => {
  it('has every case', () => {
    assert.equal(cases.length, 65);
  });

  it('lists deviations only for cases in the corpus', () => {
    const ids = new Set(cases.map((c) => c.id));
    for (const id of Object.keys(DEVIATIONS)) assert.ok(ids.has(id), `unknown case ${id}`);
  });

  for (const c of cases) {
    const exp = expectedClientOutcome(c);
    const title = `${c.id} ${c.name}${exp.deviation === undefined ? '' : ' [deviation]'}`;
    describe(title, () => {
      it(exp.deviation === undefined
        ? 'matches llhttp exactly'
        : `deviates from llhttp on purpose: ${exp.deviation}`, () => {
        const llhttp = llhttpClientOutcome(c);
        if (exp.deviation === undefined) assert.deepEqual(exp.outcome, llhttp);
        else assert.notDeepEqual(exp.outcome, llhttp);
      });
      it('parses correctly when fed whole', () => {
        assert.deepEqual(observe(c, whole(c.input)), exp.outcome);
      });
      it('parses correctly when fed one byte per execute()', () => {
        assert.deepEqual(observe(c, bytewise(c.input)), exp.outcome);
      });
      it('parses correctly when split at 20 seeded-random points', () => {
        assert.deepEqual(observe(c, randomSplits(c.input, seedOf(c.id))), exp.outcome);
      });
      // Protocol-version and upgrade deviations stop at the first message; everything else can be
      // compared message by message with llhttp when the parser is re-armed like a pipelining client.
      const stoppedEarly = exp.outcome.kind === 'error' && exp.outcome.error !== 'parse';
      const versionDeviation = exp.outcome.kind === 'error' && llhttpClientOutcome(c).kind === 'response';
      if (!stoppedEarly && !versionDeviation) {
        it('finds the same messages as llhttp when re-armed after each reusable response', () => {
          const got = observeStream(c);
          assert.deepEqual(got.messages, c.messages.map(normalizeLlhttp));
          assert.equal(got.error, c.error !== null);
        });
      }
    });
  }
});
