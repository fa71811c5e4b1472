/**
 * Bidirectional event streams through the real AWS SDK (Bedrock Runtime's
 * InvokeModelWithBidirectionalStreamCommand) on warmpool: ordinary streams on a shared HTTP/2 session,
 * full duplex (each stream's events come back while its request is still being sent), never a session
 * per stream. Against a local HTTP/2 TLS server that reads and writes AWS event-stream frames.
 *
 * 50 operations at once, each through a new client, each with 2 concurrent streams, server limit 100:
 * the sessions opened are counted with warmpool's handler and with the SDK's default one (NodeHttp2Handler,
 * which Bedrock Runtime sets up with disableConcurrentStreams). Both run in a child process started the
 * same way (the SDK's handler has no option to trust the test certificate: NODE_EXTRA_CA_CERTS does it).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type EventStreamServer, startEventStreamServer } from './helpers/eventstream-server.js';

const CHILD = fileURLToPath(new URL('./helpers/bidi-child.js', import.meta.url));
const CERT = fileURLToPath(new URL('../../test/fixtures/localhost-cert.pem', import.meta.url));

interface ChildOutput {
  firstEventMs: number[];
  echoed: number;
}

function runOperations(port: number, mode: 'warmpool' | 'default'): Promise<ChildOutput> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      [CHILD, String(port), mode, '50', '2'],
      { timeout: 90_000, env: { ...process.env, NODE_EXTRA_CA_CERTS: CERT, NODE_NO_WARNINGS: '1' } },
      (err, stdout, stderr) => {
        if (err !== null) reject(new Error(`the ${mode} child failed: ${stderr || err.message}`));
        else resolve(JSON.parse(stdout) as ChildOutput);
      },
    );
  });
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[sorted.length >> 1]!;
}

describe('AWS SDK bidirectional event streams on shared HTTP/2 sessions', () => {
  let server: EventStreamServer;

  before(async () => {
    server = await startEventStreamServer(100);
  });

  after(async () => {
    await server?.close();
  });

  it('100 concurrent streams from 50 new clients share one session with warmpool (full duplex, every echo back)', async (t) => {
    server.resetCounts();
    const warmpool = await runOperations(server.port, 'warmpool');
    const warmpoolSessions = server.sessions;
    assert.equal(server.streams, 100);
    assert.equal(warmpool.echoed, 100, 'every stream got its echo while its request was open');
    server.resetCounts();
    const sdkDefault = await runOperations(server.port, 'default');
    const defaultSessions = server.sessions;
    assert.equal(sdkDefault.echoed, 100);
    t.diagnostic(
      `sessions for 50 operations x 2 streams: SDK default handler ${defaultSessions}, warmpool ${warmpoolSessions}; ` +
        `first-event p50: default ${median(sdkDefault.firstEventMs).toFixed(1)} ms, warmpool ${median(warmpool.firstEventMs).toFixed(1)} ms`,
    );
    assert.equal(warmpoolSessions, 1);
  });
});
