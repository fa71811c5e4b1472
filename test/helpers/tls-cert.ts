/**
 * tls-cert: a self-signed certificate for localhost / 127.0.0.1. It is the committed test fixture
 * (test/fixtures/localhost-*.pem, shared with h2-server.ts) when present; otherwise one made with
 * openssl the first time a test process asks (into a temporary directory) and reused after that.
 * Trust it with `tls: { ca: cert }`.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export interface TestCert {
  key: string;
  cert: string;
}

/** From build/test/helpers/ back to the sources' test/fixtures/. */
const FIXTURES = new URL('../../../test/fixtures/', import.meta.url);

let cached: TestCert | undefined;

export function testCert(): TestCert {
  if (cached === undefined) cached = fromFixtures() ?? generate();
  return cached;
}

function fromFixtures(): TestCert | undefined {
  try {
    return {
      key: fs.readFileSync(new URL('localhost-key.pem', FIXTURES), 'utf8'),
      cert: fs.readFileSync(new URL('localhost-cert.pem', FIXTURES), 'utf8'),
    };
  } catch {
    return undefined;
  }
}

function generate(): TestCert {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'warmpool-cert-'));
  const keyFile = path.join(dir, 'key.pem');
  const certFile = path.join(dir, 'cert.pem');
  try {
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-subj',
        '/CN=localhost',
        '-addext',
        'subjectAltName=DNS:localhost,IP:127.0.0.1',
        '-days',
        '1',
        '-keyout',
        keyFile,
        '-out',
        certFile,
      ],
      { stdio: 'ignore' },
    );
    return { key: fs.readFileSync(keyFile, 'utf8'), cert: fs.readFileSync(certFile, 'utf8') };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
