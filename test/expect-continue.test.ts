/**
 * `Expect: 100-continue` (RFC 9110 §10.1.1): with the header and a body, the head goes first and the
 * body waits for 100 Continue; a final response that comes first means the body is never sent (and
 * the connection is kept only if the request could still be ended by its framing); a server that says
 * nothing gets the body after expectContinueTimeout. Over HTTP/1.1 against net servers that read and
 * write exact bytes, over HTTP/2 against node:http2 streams.
 */
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import net from 'node:net';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import { Agent, Client } from '../src/index.js';
import { TEST_CERT, startH2Server } from './helpers/h2-server.js';

interface Conn {
  socket: net.Socket;
  /** Every byte received, latin1. */
  text: string;
  /** Body bytes (after the first head) that had arrived when the head was complete. */
  earlyAtHead: number;
  closed: Promise<void>;
}

/**
 * A net server that calls `onHead` once per connection, when the first request head is complete
 * (and notes how many bytes past it had come with it).
 */
async function startServer(
  onHead: (c: Conn) => void,
): Promise<{ port: number; conns: Conn[]; close(): void }> {
  const conns: Conn[] = [];
  const server = net.createServer((socket) => {
    const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
    const c: Conn = { socket, text: '', earlyAtHead: -1, closed };
    conns.push(c);
    socket.on('error', () => {});
    socket.on('data', (d: Buffer) => {
      c.text += d.toString('latin1');
      const end = c.text.indexOf('\r\n\r\n');
      if (c.earlyAtHead === -1 && end !== -1) {
        c.earlyAtHead = c.text.length - (end + 4);
        onHead(c);
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    conns,
    close: () => {
      for (const c of conns) c.socket.destroy();
      server.close();
    },
  };
}

/** Resolves once `text()` satisfies `ok`, checking on each turn of the event loop. */
async function until(ok: () => boolean): Promise<void> {
  while (!ok()) await new Promise((r) => setImmediate(r));
}

const HEAD = 'expect: 100-continue';

describe('Expect: 100-continue over HTTP/1.1', () => {
  it('sends the head alone, and the body only after the server says 100 Continue', async () => {
    let bytesBefore100 = -1;
    const server = await startServer((c) => {
      // Give a client that did not wait every chance to show it: its body left with its head.
      setTimeout(() => {
        bytesBefore100 = c.text.length - (c.text.indexOf('\r\n\r\n') + 4);
        c.socket.write('HTTP/1.1 100 Continue\r\n\r\n');
        void until(() => c.text.endsWith('hello body')).then(() =>
          c.socket.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok'),
        );
      }, 50);
    });
    const agent = new Agent();
    const statuses: number[] = [];
    try {
      const res = await new Client({ agent }).request(`http://127.0.0.1:${server.port}/up`, {
        method: 'PUT',
        headers: { expect: '100-continue' },
        body: 'hello body',
        expectContinueTimeout: 60_000,
        onInformation: (i) => statuses.push(i.status),
      });
      assert.equal(await res.body.text(), 'ok');
      assert.deepEqual(statuses, [100]);
      const c = server.conns[0]!;
      assert.equal(c.earlyAtHead, 0, 'no body byte came with the head');
      assert.equal(bytesBefore100, 0, 'no body byte came before the 100');
      assert.ok(c.text.includes(`${HEAD}\r\n`));
      assert.ok(c.text.endsWith('\r\n\r\nhello body'));
    } finally {
      await agent.close();
      server.close();
    }
  });

  it('a final response first: the body is never sent, and a Content-Length request closes its connection', async () => {
    const server = await startServer((c) => {
      c.socket.write('HTTP/1.1 417 Expectation Failed\r\ncontent-length: 0\r\n\r\n');
    });
    const agent = new Agent();
    try {
      const res = await new Client({ agent }).request(`http://127.0.0.1:${server.port}/up`, {
        method: 'PUT',
        headers: { expect: '100-continue' },
        body: 'never sent',
        expectContinueTimeout: 60_000,
      });
      assert.equal(res.status, 417);
      await res.body.dump();
      const c = server.conns[0]!;
      // The server expects 10 body bytes that will not come: the connection cannot carry another request.
      await c.closed;
      assert.ok(c.text.endsWith('\r\n\r\n'), 'only the head was sent');
      assert.ok(!c.text.includes('never sent'));
      assert.equal(agent.stats().open, 0);
    } finally {
      await agent.close();
      server.close();
    }
  });

  it('a final response first on a chunked body: the last chunk ends the request and the connection is reused', async () => {
    const server = await startServer((c) => {
      c.socket.write('HTTP/1.1 401 Unauthorized\r\ncontent-length: 4\r\n\r\nnope');
      // The next request comes on this connection once the first has ended (its last chunk).
      void until(() => c.text.includes('GET /next') && c.text.endsWith('\r\n\r\n')).then(() =>
        c.socket.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok'),
      );
    });
    const agent = new Agent();
    try {
      const res = await new Client({ agent }).request(`http://127.0.0.1:${server.port}/up`, {
        method: 'POST',
        headers: { expect: '100-continue' },
        body: Readable.from([Buffer.from('never sent')]),
        expectContinueTimeout: 60_000,
      });
      assert.equal(res.status, 401);
      assert.equal(await res.body.text(), 'nope');
      const again = await new Client({ agent }).request(`http://127.0.0.1:${server.port}/next`);
      assert.equal(await again.body.text(), 'ok');
      assert.equal(again.connection.reused, true);
      assert.equal(server.conns.length, 1);
      const c = server.conns[0]!;
      assert.ok(!c.text.includes('never sent'));
      assert.match(c.text, /transfer-encoding: chunked\r\n\r\n0\r\n\r\nGET \/next HTTP\/1\.1\r\n/);
    } finally {
      await agent.close();
      server.close();
    }
  });

  it('a server that says nothing gets the body once expectContinueTimeout has passed', async () => {
    const server = await startServer((c) => {
      void until(() => c.text.endsWith('late body')).then(() =>
        c.socket.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok'),
      );
    });
    const agent = new Agent();
    try {
      const res = await new Client({ agent }).request(`http://127.0.0.1:${server.port}/up`, {
        method: 'PUT',
        headers: { Expect: '100-Continue' },
        body: 'late body',
        expectContinueTimeout: 20,
      });
      assert.equal(await res.body.text(), 'ok');
      assert.equal(server.conns[0]!.earlyAtHead, 0, 'the head went alone');
    } finally {
      await agent.close();
      server.close();
    }
  });

  it('without the header, head and a small body leave together (unchanged)', async () => {
    const server = await startServer((c) => {
      void until(() => c.text.endsWith('body')).then(() =>
        c.socket.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok'),
      );
    });
    const agent = new Agent();
    try {
      const res = await new Client({ agent }).request(`http://127.0.0.1:${server.port}/up`, {
        method: 'PUT',
        body: 'body',
      });
      assert.equal(await res.body.text(), 'ok');
      assert.equal(server.conns[0]!.earlyAtHead, 4);
    } finally {
      await agent.close();
      server.close();
    }
  });
});

describe('expectContinueTimeout', () => {
  it('a bad value is an invalid argument, with or without the header; nothing is sent', async () => {
    const client = new Client({ agent: new Agent() });
    for (const value of [-1, '1000', Number.NaN]) {
      await assert.rejects(
        client.request('http://127.0.0.1:1/', {
          method: 'PUT',
          body: 'x',
          expectContinueTimeout: value as number,
        }),
        { code: 'WARMPOOL_INVALID_ARGUMENT', message: /expectContinueTimeout/ },
      );
    }
    await client.agent.close();
  });
});

describe('Expect: 100-continue over HTTP/2', () => {
  it('the body waits for the 100 on its stream', async () => {
    let dataBefore100 = -1;
    const server = await startH2Server({
      handler: (stream) => {
        let received = '';
        stream.on('data', (d: Buffer) => {
          received += d.toString();
        });
        setTimeout(() => {
          dataBefore100 = received.length;
          stream.additionalHeaders({ ':status': 100 });
          stream.on('end', () => {
            stream.respond({ ':status': 200 });
            stream.end(`got ${received}`);
          });
        }, 50);
      },
    });
    const agent = new Agent({ tls: { ca: TEST_CERT } });
    try {
      const statuses: number[] = [];
      const res = await new Client({ agent }).request(`https://localhost:${server.port}/up`, {
        method: 'PUT',
        headers: { expect: '100-continue' },
        body: 'h2 body',
        expectContinueTimeout: 60_000,
        onInformation: (i) => statuses.push(i.status),
      });
      assert.equal(res.httpVersion, '2');
      assert.equal(await res.body.text(), 'got h2 body');
      assert.equal(dataBefore100, 0, 'no DATA before the 100');
      assert.deepEqual(statuses, [100]);
    } finally {
      await agent.close();
      await server.close();
    }
  });

  it('a final response first: no DATA is sent, the stream is reset with NO_ERROR, the session carries on', async () => {
    const received: Array<{ bytes: number; rstCode: number | undefined }> = [];
    const server = await startH2Server({
      handler: (stream, headers) => {
        if (headers[':path'] === '/next') {
          stream.respond({ ':status': 200 });
          stream.end('ok');
          return;
        }
        let n = 0;
        stream.on('data', (d: Buffer) => {
          n += d.length;
        });
        stream.on('close', () => received.push({ bytes: n, rstCode: stream.rstCode }));
        stream.respond({ ':status': 417 });
        stream.end('no');
      },
    });
    const agent = new Agent({ tls: { ca: TEST_CERT } });
    try {
      const res = await new Client({ agent }).request(`https://localhost:${server.port}/up`, {
        method: 'PUT',
        headers: { expect: '100-continue' },
        body: Readable.from([Buffer.from('never sent')]),
        expectContinueTimeout: 60_000,
      });
      assert.equal(res.status, 417);
      assert.equal(await res.body.text(), 'no');
      const again = await new Client({ agent }).request(`https://localhost:${server.port}/next`);
      assert.equal(await again.body.text(), 'ok');
      await until(() => received.length === 1);
      assert.deepEqual(received, [{ bytes: 0, rstCode: http2.constants.NGHTTP2_NO_ERROR }], 'no body byte');
      assert.equal(server.stats.sessionsTotal, 1);
    } finally {
      await agent.close();
      await server.close();
    }
  });
});
