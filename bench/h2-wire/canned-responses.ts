// The HTTP/2 bench server's answers: for each path in BODIES, 200 with a canned body of that size
// (the 12-byte one reads "hello world\n", as over HTTP/1.1), and 404 for any other path.
import { BODIES, cannedBody } from '../common.js';
import type { CannedResponse } from './canned-connection.js';
import { encodeHead } from './hpack.js';

export function cannedH2Responses(): (path: string) => CannedResponse {
  const canned = new Map<string, CannedResponse>();
  for (const [path, size] of Object.entries(BODIES)) {
    const body = cannedBody(size);
    canned.set(path, {
      head: encodeHead(200, [
        ['content-type', 'application/octet-stream'],
        ['content-length', String(size)],
      ]),
      body,
    });
  }
  const notFound: CannedResponse = {
    head: encodeHead(404, [
      ['content-type', 'text/plain'],
      ['content-length', '10'],
    ]),
    body: Buffer.from('not found\n'),
  };
  return (path) => canned.get(path) ?? notFound;
}
