// The fetch rows: warmpool's fetch(), Node's built-in fetch (the undici bundled with the Node that runs
// the bench, on its default dispatcher), and Node's fetch through WarmpoolDispatcher. Each reads the
// body whole with arrayBuffer(), as a fetch caller does.
import { type ClientSpec, urls } from './clients.js';
import { checkBodyLength } from './common.js';
import { wp } from './warmpool.js';

/** warmpool's fetch() on an Agent of its own, capped at C connections. */
export const warmpoolFetch: ClientSpec = {
  name: 'warmpool fetch',
  async create(origin, connections) {
    const { Agent, fetch } = await wp();
    const agent = new Agent({ maxConnectionsPerOrigin: connections });
    const url = urls(origin);
    const init = { agent };
    return {
      async request(path, _w, headers) {
        const res = await fetch(url(path), headers ? { agent, headers } : init);
        checkBodyLength(path, (await res.arrayBuffer()).byteLength);
      },
      close: () => agent.close(),
    };
  },
};

/**
 * Node's own fetch as code calls it: `fetch(url)`, on the global dispatcher Node made (an undici Agent
 * with no cap per origin; at C requests in flight it keeps C connections).
 */
export const nodeFetch: ClientSpec = {
  name: 'Node fetch',
  async create(origin) {
    const url = urls(origin);
    return {
      async request(path, _w, headers) {
        const res = await globalThis.fetch(url(path), headers ? { headers } : undefined);
        checkBodyLength(path, (await res.arrayBuffer()).byteLength);
      },
      // The global dispatcher is the process's: nothing to close (its idle connections time out).
      async close() {},
    };
  },
};

/** Node's own fetch with `dispatcher: new WarmpoolDispatcher({ agent })`, the agent capped at C. */
export const nodeFetchOnWarmpool: ClientSpec = {
  name: 'Node fetch on WarmpoolDispatcher',
  async create(origin, connections) {
    const { Agent, WarmpoolDispatcher } = await wp();
    const agent = new Agent({ maxConnectionsPerOrigin: connections });
    const dispatcher = new WarmpoolDispatcher({ agent });
    const url = urls(origin);
    // Node's RequestInit type does not know `dispatcher` (undici's extension, which Node's fetch reads).
    const init = { dispatcher } as unknown as RequestInit;
    return {
      async request(path, _w, headers) {
        const res = await globalThis.fetch(
          url(path),
          headers ? ({ dispatcher, headers } as unknown as RequestInit) : init,
        );
        checkBodyLength(path, (await res.arrayBuffer()).byteLength);
      },
      close: () => agent.close(),
    };
  },
};
