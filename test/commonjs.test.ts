/**
 * CommonJS users: `require('warmpool')` loads the package (node's require(esm), unflagged since Node
 * 20.19 and 22.12) through its exports map, and a CommonJS TypeScript file gets its types.
 *
 * The package is laid out as a user installs it: `npm run build`'s output (tsconfig.build.json) in a
 * temporary node_modules/warmpool/dist, beside a copy of the repository's package.json, so what is
 * tested is the real exports map over code built from the current sources. The child runs on the
 * same node as this test (process.execPath): CI runs the suite on every supported Node.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { repoRootFrom } from './helpers/conformance-cases.js';
import { type TestHttpServer, startHttpServer } from './helpers/http-server.js';

const run = promisify(execFile);
const ROOT = repoRootFrom(import.meta.url);
const TSC = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');

/** A CommonJS script: the names by require(), a real request, and the same module as import() gives. */
const CJS_USER = `
const { request, Agent, getGlobalAgent, WarmpoolError } = require('warmpool');
const { WarmpoolHttpHandler } = require('warmpool/aws');
(async () => {
  const res = await request(process.argv[2], { headers: { 'x-from': 'cjs' } });
  const text = await res.body.text();
  const esm = await import('warmpool');
  const testing = require('warmpool/testing');
  const mock = new testing.MockAgent();
  mock.intercept({ origin: 'http://mock.test', path: '/' }).reply(200, 'mocked');
  const viaClient = await (await new (require('warmpool').Client)({ agent: mock }).request('http://mock.test/')).body.text().catch((e) => e.code);
  await mock.close();
  const aws = await import('warmpool/aws');
  const handler = new WarmpoolHttpHandler();
  const awsSharesGlobalAgent = handler.agent === esm.getGlobalAgent();
  const { response } = await handler.handle({
    method: 'GET', protocol: 'http:', hostname: '127.0.0.1', port: Number(new URL(process.argv[2]).port),
    path: '/', headers: { 'x-from': 'aws' },
  });
  let awsText = '';
  for await (const chunk of response.body) awsText += chunk;
  const agent = new Agent();
  await agent.close();
  await getGlobalAgent().close();
  console.log(JSON.stringify({
    status: res.status,
    text,
    resolved: require.resolve('warmpool'),
    sameAgentClass: esm.Agent === Agent,
    sameErrorClass: esm.WarmpoolError === WarmpoolError,
    testing: require.resolve('warmpool/testing'),
    mockIsAgent: mock instanceof Agent,
    sameMockClass: (await import('warmpool/testing')).MockAgent === testing.MockAgent,
    mocked: viaClient,
    awsText,
    awsSharesGlobalAgent,
    sameHandlerClass: aws.WarmpoolHttpHandler === WarmpoolHttpHandler,
    awsResolved: require.resolve('warmpool/aws'),
  }));
})().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
`;

/** A CommonJS TypeScript module (.cts) using the package through require. */
const CTS_USER = `
import warmpool = require('warmpool');
import aws = require('warmpool/aws');

export const handler: aws.WarmpoolHttpHandler = new aws.WarmpoolHttpHandler({ requestTimeout: 1000 });

export async function use(url: string): Promise<string> {
  const agent: warmpool.Agent = new warmpool.Agent({ maxConnectionsPerOrigin: 2 });
  const client = new warmpool.Client({ agent, baseUrl: url });
  const res: warmpool.Response = await client.request('/');
  const status: number = res.status;
  void status;
  try {
    return await res.body.text();
  } catch (err) {
    if (err instanceof warmpool.WarmpoolError) return err.code;
    throw err;
  } finally {
    await agent.close();
  }
}
`;

describe('CommonJS users', () => {
  let dir = '';
  let server: TestHttpServer;

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'warmpool-cjs-'));
    const pkg = path.join(dir, 'node_modules', 'warmpool');
    await mkdir(pkg, { recursive: true });
    await copyFile(path.join(ROOT, 'package.json'), path.join(pkg, 'package.json'));
    // The build's own config; --noCheck: the sources were type-checked by the compile before the suite,
    // and the output is the same, in half the time.
    const build = path.join(ROOT, 'tsconfig.build.json');
    await run(process.execPath, [TSC, '-p', build, '--outDir', path.join(pkg, 'dist'), '--noCheck']);
    server = await startHttpServer((req, res) => {
      res.end(`hello ${String(req.headers['x-from'])}`);
    });
  });

  after(async () => {
    await server?.close();
    if (dir !== '') await rm(dir, { recursive: true, force: true });
  });

  it("require('warmpool') from a .cjs file loads the package and makes a request", async () => {
    const file = path.join(dir, 'user.cjs');
    await writeFile(file, CJS_USER);
    const { stdout, stderr } = await run(process.execPath, [file, `${server.url}/`], { cwd: dir }).catch(
      (err: { stdout?: string; stderr?: string; message: string }) => {
        assert.fail(`the CommonJS user failed on node ${process.version}:\n${err.stderr ?? err.message}`);
      },
    );
    const out = JSON.parse(stdout) as Record<string, unknown>;
    assert.deepEqual(out, {
      status: 200,
      text: 'hello cjs',
      resolved: path.join(dir, 'node_modules', 'warmpool', 'dist', 'index.js'),
      // One module for both: require() and import() share the agent and the error classes.
      sameAgentClass: true,
      sameErrorClass: true,
      // warmpool/testing through the exports map, on the same Agent class as the root.
      testing: path.join(dir, 'node_modules', 'warmpool', 'dist', 'testing', 'index.js'),
      mockIsAgent: true,
      sameMockClass: true,
      mocked: 'mocked',
      // warmpool/aws: the subpath's own entry, on the same global Agent as the root entry.
      awsText: 'hello aws',
      awsSharesGlobalAgent: true,
      sameHandlerClass: true,
      awsResolved: path.join(dir, 'node_modules', 'warmpool', 'dist', 'aws', 'handler.js'),
    });
    assert.equal(stderr, '', 'no warning on stderr');
  });

  it("require('warmpool/otel') loads through the exports map beside an installed @opentelemetry/api; the bin runs", async () => {
    const api = path.join(dir, 'node_modules', '@opentelemetry', 'api');
    await mkdir(path.dirname(api), { recursive: true });
    await symlink(path.join(ROOT, 'node_modules', '@opentelemetry', 'api'), api, 'dir').catch(() => {});
    const file = path.join(dir, 'otel-user.cjs');
    await writeFile(
      file,
      "const { instrumentWarmpool } = require('warmpool/otel');\nconst stop = instrumentWarmpool();\nstop();\n" +
        "console.log(typeof instrumentWarmpool, require.resolve('warmpool/otel'));\n",
    );
    const { stdout } = await run(process.execPath, [file], { cwd: dir });
    assert.equal(
      stdout.trim(),
      `function ${path.join(dir, 'node_modules', 'warmpool', 'dist', 'otel', 'index.js')}`,
    );
    const pkg = JSON.parse(
      await readFile(path.join(dir, 'node_modules', 'warmpool', 'package.json'), 'utf8'),
    );
    const bin = path.join(dir, 'node_modules', 'warmpool', pkg.bin.warmpool);
    assert.match(await readFile(bin, 'utf8'), /^#!\/usr\/bin\/env node\n/);
    const help = await run(process.execPath, [bin, '--help'], { cwd: dir });
    assert.match(help.stdout, /^usage: warmpool <command>/);
  });

  it('a CommonJS TypeScript file (.cts) that requires warmpool type-checks against its types', async () => {
    const file = path.join(dir, 'user.cts');
    await writeFile(file, CTS_USER);
    const args = [
      TSC,
      ...'--noEmit --strict --skipLibCheck false --module NodeNext --moduleResolution NodeNext --target ES2022 --lib ES2023 --types node'.split(
        ' ',
      ),
      '--typeRoots',
      path.join(ROOT, 'node_modules', '@types'),
      file,
    ];
    const result = await run(process.execPath, args, { cwd: dir }).then(
      () => '',
      (err: { stdout?: string; stderr?: string; message: string }) =>
        `${err.stdout ?? ''}${err.stderr ?? ''}` || err.message,
    );
    assert.equal(result, '', `the .cts user does not compile:\n${result}`);
  });
});
