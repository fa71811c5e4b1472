import type { DialResult } from '../dial/dial.js';
import type { ConnectionOwner, PoolConnection } from '../exchange/connection.js';
import { H1Connection } from '../h1/connection.js';
import { H2Connection } from '../h2/connection.js';
import type { ResolvedAgentOptions } from './options.js';

/** Wraps a dialed socket in the connection type its negotiated protocol calls for. */
export function createConnection(
  dialed: DialResult,
  id: number,
  owner: ConnectionOwner,
  options: ResolvedAgentOptions,
  origin: string,
): PoolConnection {
  if (dialed.protocol === 'h2') {
    return new H2Connection(id, dialed.socket, owner, options.clock, origin, options.connectTimeout, {
      maxHeaderSize: options.maxHeaderSize,
      maxHeaderCount: options.maxHeaderCount,
    });
  }
  return new H1Connection(
    id,
    dialed.socket,
    owner,
    options.clock,
    { maxHeaderSize: options.maxHeaderSize, maxHeaderCount: options.maxHeaderCount },
    dialed.readRoute,
  );
}
