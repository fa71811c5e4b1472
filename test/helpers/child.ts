/** Child node processes running a script against the compiled library (process lifetime tests). */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** The compiled library, for child processes to import. */
export const LIBRARY = fileURLToPath(new URL('../../src/index.js', import.meta.url));

export interface ChildResult {
  code: number | null;
  stdout: string;
  stderr: string;
  /** It did not exit by itself within 10 s and was killed. */
  killed: boolean;
}

/**
 * Runs an ES module script in a child node; kills it after 10 s (counted as not exiting by itself).
 * `onLine` sees each complete line of its stdout as it arrives.
 */
export function runChild(
  script: string,
  nodeArgs: string[] = [],
  onLine?: (line: string, child: ReturnType<typeof spawn>) => void,
): Promise<ChildResult> {
  const child = spawn(process.execPath, [...nodeArgs, '--input-type=module', '-e', script], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  let killed = false;
  const killer = setTimeout(() => {
    killed = true;
    child.kill('SIGKILL');
  }, 10_000);
  child.stdout!.on('data', (d: Buffer) => {
    const before = stdout;
    stdout += d.toString();
    if (onLine !== undefined) {
      const lines = stdout.split('\n');
      const done = before.split('\n').length - 1;
      for (let i = done; i < lines.length - 1; i++) onLine(lines[i]!, child);
    }
  });
  child.stderr!.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  return new Promise((resolve) => {
    child.once('exit', (code) => {
      clearTimeout(killer);
      resolve({ code, stdout, stderr, killed });
    });
  });
}

/**
 * A child a test may have left stopped (SIGSTOP) when it failed: continue it so it can exit, and kill
 * it if it has not within 3 s. Resolves once it has exited.
 */
export async function reapStoppedChild(child: ReturnType<typeof spawn>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGCONT');
  const exited = new Promise((r) => child.once('exit', r));
  const killer = setTimeout(() => child.kill('SIGKILL'), 3000);
  await exited;
  clearTimeout(killer);
}
