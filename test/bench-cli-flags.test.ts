/**
 * The bench commands' flags (bench/cli-flags.ts): a mistyped one stops the command with its usage
 * instead of starting a fourteen-minute run that measures something else.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type FlagSpec, checkFlags } from '../bench/cli-flags.js';

const RUN: FlagSpec = {
  exact: ['--quick', '--no-scenarios'],
  withValue: ['--only', '--h2-server'],
  choices: { '--h2-server': ['node', 'canned'] },
  positional: false,
};

test('known flags, repeated flags with values and allowed choices pass', () => {
  assert.deepEqual(checkFlags([], RUN), { kind: 'ok' });
  assert.deepEqual(
    checkFlags(['--quick', '--only=h2', '--only=/12 c=1/', '--no-scenarios', '--h2-server=node'], RUN),
    { kind: 'ok' },
  );
  // A value may itself hold '=' (only the first one separates it).
  assert.deepEqual(checkFlags(['--only=c=1/'], RUN), { kind: 'ok' });
});

test('--help and -h ask for the usage, wherever they stand', () => {
  assert.deepEqual(checkFlags(['--help'], RUN), { kind: 'help' });
  assert.deepEqual(checkFlags(['--quick', '-h'], RUN), { kind: 'help' });
});

test('a mistyped, valueless or misused flag is an error that names it', () => {
  const error = (args: string[]) => {
    const r = checkFlags(args, RUN);
    assert.equal(r.kind, 'error', `${args.join(' ')} should be refused`);
    return r.kind === 'error' ? r.message : '';
  };
  assert.match(error(['--h2-serer=node']), /unknown option --h2-serer=node/);
  assert.match(error(['--quik']), /unknown option --quik/);
  assert.match(error(['--only']), /--only needs a value/);
  assert.match(error(['--only=']), /--only needs a value/);
  assert.match(error(['--quick=1']), /--quick takes no value/);
  assert.match(error(['--h2-server=nginx']), /--h2-server takes one of: node, canned/);
  assert.match(error(['h2']), /unexpected argument "h2"/);
});

test('positional arguments pass where the command takes them', () => {
  const profile: FlagSpec = { exact: ['--h2'], withValue: ['--seconds'], positional: true };
  assert.deepEqual(checkFlags(['warmpool', '/12', '1', '--h2', '--seconds=2'], profile), { kind: 'ok' });
  assert.equal(checkFlags(['warmpool', '--second=2'], profile).kind, 'error');
});

// The commands themselves: both exit before starting a server, so these take well under a second.
const script = (name: string) => fileURLToPath(new URL(`../bench/${name}`, import.meta.url));
const runScript = (name: string, args: string[]) =>
  spawnSync(process.execPath, [script(name), ...args], { encoding: 'utf8', timeout: 60_000 });

test('npm run bench -- --help prints the usage and exits 0 without running anything', () => {
  const r = runScript('run.js', ['--help']);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /usage: npm run bench -- \[--quick\]/);
  assert.match(r.stdout, /--h2-server=node/);
  assert.doesNotMatch(r.stdout, /req\/s/);
});

test('npm run bench with an unknown flag exits 2 with the flag and the usage', () => {
  const r = runScript('run.js', ['--only=h2', '--h2-serer=node']);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /unknown option --h2-serer=node/);
  assert.match(r.stderr, /usage: npm run bench/);
});

test('npm run bench:profile refuses an unknown flag and a bad --h2-server value', () => {
  const unknown = runScript('profile.js', ['warmpool', '/12', '1', '--h2', '--second=2']);
  assert.equal(unknown.status, 2);
  assert.match(unknown.stderr, /unknown option --second=2/);
  assert.match(unknown.stderr, /clients, HTTP\/2 \(--h2\): warmpool/);
  const badServer = runScript('profile.js', ['floor', '/12', '1', '--h2', '--h2-server=nod']);
  assert.equal(badServer.status, 2);
  assert.match(badServer.stderr, /--h2-server takes one of: node, canned/);
  const help = runScript('profile.js', ['--help']);
  assert.equal(help.status, 0);
  assert.match(help.stdout, /usage: npm run bench:profile/);
});
