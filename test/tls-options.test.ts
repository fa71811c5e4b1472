/**
 * The TLS surface: a PKCS#12 client certificate (made with openssl from the test fixtures) presented
 * to a node:https server that asks for one; certificate pinning through checkServerIdentity (a pin
 * that matches, one that does not); a request's `tls` merged over its Agent's; and every TLS option
 * in the pool key by its full content (a function by identity).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { constants, X509Certificate, hash } from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import tls from 'node:tls';
import { Agent, Client, type TlsOptions, type WarmpoolError } from '../src/index.js';
import type { Target } from '../src/pool/agent.js';

const fixtures = new URL('../../test/fixtures/', import.meta.url);
const pem = (name: string): string => fs.readFileSync(new URL(name, fixtures), 'utf8');
const serverCert = pem('localhost-cert.pem');

/** The SHA-256 of the certificate's SubjectPublicKeyInfo, base64: what HPKP and curl's --pinnedpubkey pin. */
function spkiPin(certPem: string): string {
  const der = new X509Certificate(certPem).publicKey.export({ type: 'spki', format: 'der' });
  return hash('sha256', der, 'base64');
}

/** A checkServerIdentity that does the usual name check, then compares the public key's hash. */
function pinTo(pin: string): NonNullable<TlsOptions['checkServerIdentity']> {
  return (host, cert) => {
    const err = tls.checkServerIdentity(host, cert);
    if (err !== undefined) return err;
    const got = cert.pubkey === undefined ? '' : hash('sha256', cert.pubkey, 'base64');
    return got === pin ? undefined : new Error(`public key pin mismatch for ${host}: got ${got}`);
  };
}

describe('TLS options', () => {
  let server: https.Server;
  let origin: string;
  let dir: string;
  let pfx: Buffer;

  before(async () => {
    // PKCS#12 of the fixture client certificate ali (signed by client-ca-cert.pem), locked with 'secret'.
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'warmpool-p12-'));
    execFileSync('openssl', [
      'pkcs12',
      '-export',
      '-in',
      fileOf('ali-cert.pem'),
      '-inkey',
      fileOf('ali-key.pem'),
      '-passout',
      'pass:secret',
      '-out',
      path.join(dir, 'ali.p12'),
    ]);
    pfx = fs.readFileSync(path.join(dir, 'ali.p12'));
    server = https.createServer(
      {
        key: pem('localhost-key.pem'),
        cert: serverCert,
        ca: pem('client-ca-cert.pem'),
        requestCert: true,
        rejectUnauthorized: false,
      },
      (req, res) => {
        const socket = req.socket as tls.TLSSocket;
        const peer = socket.getPeerCertificate();
        const who = socket.authorized ? String(peer.subject?.CN) : 'anonymous';
        res.end(`${who} ${socket.getProtocol()}`);
      },
    );
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    origin = `https://localhost:${(server.address() as { port: number }).port}`;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('a PKCS#12 client certificate (pfx + passphrase) is presented to the server', async () => {
    const agent = new Agent({ tls: { ca: serverCert, pfx, passphrase: 'secret' }, allowHttp2: false });
    try {
      const res = await new Client({ agent }).request(`${origin}/`);
      assert.match(await res.body.text(), /^ali TLSv1\.3$/);
    } finally {
      await agent.destroy();
    }
  });

  it('a pfx the passphrase does not open is WARMPOOL_CONNECT_ERROR with the cause', async () => {
    const agent = new Agent({ tls: { ca: serverCert, pfx, passphrase: 'wrong' } });
    try {
      await assert.rejects(new Client({ agent }).request(`${origin}/`), (err) => {
        assert.equal((err as WarmpoolError).code, 'WARMPOOL_CONNECT_ERROR');
        assert.ok((err as WarmpoolError).cause instanceof Error);
        return true;
      });
    } finally {
      await agent.destroy();
    }
  });

  it("a request's tls merges over the Agent's (the Agent's ca stays; the request adds the client certificate)", async () => {
    const agent = new Agent({ tls: { ca: serverCert } });
    const client = new Client({ agent });
    try {
      const anonymous = await client.request(`${origin}/`);
      assert.match(await anonymous.body.text(), /^anonymous /);
      // Replacing the Agent's tls would drop its ca, and the self-signed server would be refused.
      const ali = await client.request(`${origin}/`, { tls: { pfx, passphrase: 'secret' } });
      assert.match(await ali.body.text(), /^ali /);
      assert.notEqual(ali.connection.id, anonymous.connection.id);
      const again = await client.request(`${origin}/`, { tls: { pfx, passphrase: 'secret' } });
      await again.body.text();
      assert.equal(again.connection.id, ali.connection.id);
    } finally {
      await agent.destroy();
    }
  });

  it('a public-key pin that matches connects; one that does not is WARMPOOL_CONNECT_ERROR with the cause', async () => {
    const pin = spkiPin(serverCert);
    const agent = new Agent({ tls: { ca: serverCert } });
    const client = new Client({ agent });
    try {
      const res = await client.request(`${origin}/`, { tls: { checkServerIdentity: pinTo(pin) } });
      assert.equal(res.status, 200);
      await res.body.text();
      const otherPin = spkiPin(pem('other-localhost-cert.pem'));
      await assert.rejects(
        client.request(`${origin}/`, { tls: { checkServerIdentity: pinTo(otherPin) } }),
        (err) => {
          assert.equal((err as WarmpoolError).code, 'WARMPOOL_CONNECT_ERROR');
          assert.match(
            ((err as WarmpoolError).cause as Error).message,
            /public key pin mismatch for localhost/,
          );
          return true;
        },
      );
    } finally {
      await agent.destroy();
    }
  });

  it('checkServerIdentity is keyed by identity: another function (even the same source) never shares a connection', async () => {
    const pin = spkiPin(serverCert);
    const one = pinTo(pin);
    const two = pinTo(pin);
    const agent = new Agent({ tls: { ca: serverCert } });
    const client = new Client({ agent });
    const id = async (check: typeof one) => {
      const res = await client.request(`${origin}/`, { tls: { checkServerIdentity: check } });
      await res.body.text();
      return res.connection.id;
    };
    try {
      const a1 = await id(one);
      const b1 = await id(two);
      assert.notEqual(a1, b1);
      assert.equal(await id(one), a1);
      assert.equal(await id(two), b1);
    } finally {
      await agent.destroy();
    }
  });

  it('maxVersion and ciphers change the connection: each value its own connection', async () => {
    const agent = new Agent({ tls: { ca: serverCert }, allowHttp2: false });
    const client = new Client({ agent });
    const get = async (t: TlsOptions | undefined) => {
      const res = await client.request(`${origin}/`, { tls: t });
      return { text: await res.body.text(), id: res.connection.id };
    };
    try {
      const v13 = await get(undefined);
      const v12 = await get({ maxVersion: 'TLSv1.2' });
      assert.equal(v13.text, 'anonymous TLSv1.3');
      assert.equal(v12.text, 'anonymous TLSv1.2');
      const aes128 = await get({ maxVersion: 'TLSv1.2', ciphers: 'ECDHE-RSA-AES128-GCM-SHA256' });
      const aes256 = await get({ maxVersion: 'TLSv1.2', ciphers: 'ECDHE-RSA-AES256-GCM-SHA384' });
      assert.equal(new Set([v13.id, v12.id, aes128.id, aes256.id]).size, 4);
      // A new options object with the same content shares.
      assert.equal((await get({ maxVersion: 'TLSv1.2' })).id, v12.id);
    } finally {
      await agent.destroy();
    }
  });
});

describe('the pool key names every TLS option by its full content', () => {
  const target: Target = { secure: true, hostname: 'localhost', port: 443, origin: 'https://localhost:443' };
  // Two values of equal length per field (a length or prefix never stands for the content).
  const cases: Array<[keyof TlsOptions, unknown, unknown, unknown]> = [
    // field, value, another value, a copy of the first (equal content, another object)
    ['pfx', Buffer.from('pfx-AAAA'), Buffer.from('pfx-BBBB'), Buffer.from('pfx-AAAA')],
    ['passphrase', 'secret-1', 'secret-2', 'secret-1'],
    ['ciphers', 'AES128-GCM-SHA256', 'AES256-GCM-SHA384', 'AES128-GCM-SHA256'],
    ['minVersion', 'TLSv1.2', 'TLSv1.3', 'TLSv1.2'],
    ['maxVersion', 'TLSv1.2', 'TLSv1.3', 'TLSv1.2'],
    ['ecdhCurve', 'P-256', 'P-384', 'P-256'],
    ['sigalgs', 'rsa_pss_rsae_sha256', 'rsa_pss_rsae_sha384', 'rsa_pss_rsae_sha256'],
    [
      'secureOptions',
      constants.SSL_OP_NO_TICKET,
      constants.SSL_OP_NO_COMPRESSION,
      constants.SSL_OP_NO_TICKET,
    ],
  ];
  for (const [field, value, other, copy] of cases) {
    it(`${field}: another value, another pool; equal content, the same pool`, () => {
      const agent = new Agent();
      const pool = agent.poolFor(target, { [field]: value } as TlsOptions);
      assert.notEqual(agent.poolFor(target, { [field]: other } as TlsOptions), pool);
      assert.notEqual(agent.poolFor(target, undefined), pool);
      assert.equal(agent.poolFor(target, { [field]: copy } as TlsOptions), pool);
    });
  }
  it('an options object changed in place makes another key (the last-pool shortcut notices)', () => {
    const agent = new Agent({ tls: { ca: 'a CA' } });
    const t: TlsOptions = { ciphers: 'AES128-GCM-SHA256' };
    const pool = agent.poolFor(target, t);
    t.ciphers = 'AES256-GCM-SHA384';
    assert.notEqual(agent.poolFor(target, t), pool);
  });
});

function fileOf(name: string): string {
  return new URL(name, fixtures).pathname;
}
