import net from 'node:net';
import tls from 'node:tls';
import type { TlsOptions } from './dial.js';

/**
 * tls.connect()'s options for a connection to `hostname`: every TlsOptions field (each is part of the
 * pool key, so each must reach the handshake, on a direct dial and inside a proxy's tunnel alike: a
 * pin or a client certificate dropped on one path would be a hole), SNI unless the host is an IP
 * literal, and the ALPN list.
 */
export function tlsConnectOptions(
  t: TlsOptions,
  hostname: string,
  alpn: string[],
  session: Buffer | undefined,
): tls.ConnectionOptions {
  return {
    servername: t.servername ?? (net.isIP(hostname) !== 0 ? undefined : hostname),
    ALPNProtocols: alpn,
    ca: t.ca,
    cert: t.cert,
    key: t.key,
    pfx: t.pfx,
    passphrase: t.passphrase,
    rejectUnauthorized: t.rejectUnauthorized ?? true,
    ciphers: t.ciphers,
    minVersion: t.minVersion,
    maxVersion: t.maxVersion,
    ecdhCurve: t.ecdhCurve,
    sigalgs: t.sigalgs,
    checkServerIdentity: t.checkServerIdentity ?? tls.checkServerIdentity,
    secureOptions: t.secureOptions,
    session,
  };
}
