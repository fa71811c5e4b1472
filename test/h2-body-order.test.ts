/**
 * HTTP/2 bodies whose DATA reaches the client in the same read as their HEADERS: node:http2 emits
 * 'response' on the next tick after the HEADERS frame, but may hand DATA read in that same turn to
 * 'data' at once, so a stream's first chunks can come before its head. None may be lost.
 *
 * The server runs in a worker thread: it writes while the client is busy, so the client's reads
 * carry many frames at a time (with the server in the test's thread, each turn reads little, and the
 * race did not show).
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { Worker } from 'node:worker_threads';
import { Agent, Client } from '../src/index.js';
import { TEST_CERT, TEST_KEY } from './helpers/h2-server.js';

const SERVER = `
const http2 = require('node:http2');
const { parentPort, workerData } = require('node:worker_threads');
const bodies = new Map();
const server = http2.createSecureServer({ cert: workerData.cert, key: workerData.key });
server.on('stream', (stream, headers) => {
  stream.on('error', () => {});
  const [, size, withLength] = headers[':path'].split('/');
  let body = bodies.get(size);
  if (body === undefined) {
    body = Buffer.alloc(Number(size), 'x');
    body.write('hello world\\n');
    bodies.set(size, body);
  }
  stream.respond(withLength === '1' ? { ':status': 200, 'content-length': body.length } : { ':status': 200 });
  stream.end(body);
});
server.listen(0, '127.0.0.1', () => parentPort.postMessage(server.address().port));
parentPort.on('message', () => process.exit(0));
`;

let worker: Worker | undefined;
const agents: Agent[] = [];
after(async () => {
  for (const a of agents) await a.destroy();
  await worker?.terminate();
});

async function serverUrl(): Promise<string> {
  if (worker === undefined) {
    worker = new Worker(SERVER, { eval: true, workerData: { cert: TEST_CERT, key: TEST_KEY } });
  }
  const w = worker;
  const port = await new Promise<number>((resolve, reject) => {
    w.once('message', resolve);
    w.once('error', reject);
  });
  return `https://127.0.0.1:${port}`;
}

describe('HTTP/2 body chunks that arrive before the head', () => {
  let url: Promise<string> | undefined;
  for (const withLength of [true, false]) {
    for (const size of [12, 40_000]) {
      it(`${size} B bodies ${withLength ? 'with' : 'without'} content-length, 64 streams in flight: every byte arrives`, async () => {
        url ??= serverUrl();
        const agent = new Agent({ tls: { ca: TEST_CERT } });
        agents.push(agent);
        const client = new Client({ agent, baseUrl: await url });
        const expected = Buffer.alloc(size, 'x');
        expected.write('hello world\n');
        const path = `/${size}/${withLength ? 1 : 0}`;
        let wrong = 0;
        let example = '';
        await Promise.all(
          Array.from({ length: 64 }, async () => {
            for (let i = 0; i < 40; i++) {
              const b = await (await client.request(path)).body.bytes();
              if (!b.equals(expected)) {
                wrong++;
                example ||= `${b.length} of ${size} bytes`;
              }
            }
          }),
        );
        assert.equal(wrong, 0, `${wrong} of ${64 * 40} bodies wrong, e.g. ${example}`);
        assert.equal(agent.stats().origins[0]!.created, 1);
      });
    }
  }
});
