/**
 * Run in a child process (NODE_EXTRA_CA_CERTS names the test certificate, which the SDK's own HTTP/2
 * handler has no option to trust): `node bidi-child.js <port> <warmpool|default> <operations>
 * <streams per operation>`. Each operation makes a new BedrockRuntimeClient and runs its streams at
 * once, every operation at once; each stream sends one event, waits for its echo (so the response is
 * read while the request is still open: full duplex), then ends. Prints JSON: the first-event latency
 * of every stream (ms) and how many echoes came back.
 */
import {
  BedrockRuntimeClient,
  InvokeModelWithBidirectionalStreamCommand,
} from '@aws-sdk/client-bedrock-runtime';
import { WarmpoolHttpHandler } from '../../src/aws/handler.js';
import { getGlobalAgent } from '../../src/index.js';

const [port, mode, operations, perOperation] = process.argv.slice(2);

async function stream(client: BedrockRuntimeClient, tag: string): Promise<number> {
  let echoed!: () => void;
  const gotEcho = new Promise<void>((resolve) => {
    echoed = resolve;
  });
  async function* input() {
    yield { chunk: { bytes: new TextEncoder().encode(tag) } };
    await gotEcho;
  }
  const start = performance.now();
  const res = await client.send(
    new InvokeModelWithBidirectionalStreamCommand({ modelId: 'echo', body: input() }),
  );
  let firstEventMs = -1;
  for await (const event of res.body ?? []) {
    if (firstEventMs === -1) firstEventMs = performance.now() - start;
    if (event.chunk?.bytes !== undefined && Buffer.from(event.chunk.bytes).toString() === tag) echoed();
  }
  return firstEventMs;
}

async function operation(i: number): Promise<number[]> {
  const client = new BedrockRuntimeClient({
    region: 'us-east-1',
    endpoint: `https://localhost:${port}`,
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    ...(mode === 'warmpool' ? { requestHandler: new WarmpoolHttpHandler() } : {}),
  });
  try {
    const tags = Array.from({ length: Number(perOperation) }, (_, j) => `op-${i}-stream-${j}`);
    return await Promise.all(tags.map((tag) => stream(client, tag)));
  } finally {
    client.destroy();
  }
}

const latencies = (
  await Promise.all(Array.from({ length: Number(operations) }, (_, i) => operation(i)))
).flat();
await getGlobalAgent().close();
console.log(JSON.stringify({ firstEventMs: latencies, echoed: latencies.filter((ms) => ms >= 0).length }));
