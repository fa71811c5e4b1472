// The flags the bench commands take. A mistyped flag used to be ignored: `npm run bench -- --help`
// started the whole fourteen-minute run, and `--h2-serer=node` silently measured the other server.
// Now anything not listed stops the command before it starts a server.

/** What a command accepts besides --help: flags whole (`--quick`), and flags that take `=value`. */
export interface FlagSpec {
  exact: readonly string[];
  withValue: readonly string[];
  /** For a flag of withValue that takes one of a few values: those values. */
  choices?: Readonly<Record<string, readonly string[]>>;
  /** Whether arguments that are not flags (a client name, a path) are allowed. */
  positional: boolean;
}

/** What checkFlags found: go on, print the usage and stop (asked for), or stop with an error. */
export type FlagCheck = { kind: 'ok' } | { kind: 'help' } | { kind: 'error'; message: string };

export function checkFlags(args: readonly string[], spec: FlagSpec): FlagCheck {
  if (args.includes('--help') || args.includes('-h')) return { kind: 'help' };
  for (const arg of args) {
    if (!arg.startsWith('-')) {
      if (spec.positional) continue;
      return { kind: 'error', message: `unexpected argument "${arg}"` };
    }
    if (spec.exact.includes(arg)) continue;
    const eq = arg.indexOf('=');
    const name = eq === -1 ? arg : arg.slice(0, eq);
    if (spec.withValue.includes(name)) {
      if (eq === -1 || eq === arg.length - 1)
        return { kind: 'error', message: `${name} needs a value: ${name}=...` };
      const allowed = spec.choices?.[name];
      if (allowed !== undefined && !allowed.includes(arg.slice(eq + 1))) {
        return { kind: 'error', message: `${name} takes one of: ${allowed.join(', ')}` };
      }
      continue;
    }
    if (spec.exact.includes(name)) return { kind: 'error', message: `${name} takes no value` };
    return { kind: 'error', message: `unknown option ${arg}` };
  }
  return { kind: 'ok' };
}

/** Applies checkFlags for a command: prints the usage and exits on --help (0) or a mistake (2). */
export function exitUnlessFlagsValid(args: readonly string[], spec: FlagSpec, usage: string): void {
  const check = checkFlags(args, spec);
  if (check.kind === 'ok') return;
  if (check.kind === 'help') {
    console.log(usage);
    process.exit(0);
  }
  console.error(`${check.message}\n\n${usage}`);
  process.exit(2);
}
