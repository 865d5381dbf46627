// The small command framework of the `blankglm` CLI. Every command is a typed value: its options,
// positionals and help text are declared once, and the same declaration drives parsing, `--help`,
// and in-process calls from tests (`runCli(argv, io)`), so the CLI and the library stay one thing.
import { parseArgs } from 'node:util';
import type { Readable, Writable } from 'node:stream';

export interface OptionSpec {
  type: 'string' | 'boolean' | 'number';
  description: string;
  short?: string;
  /** Shown in help as `--name <placeholder>`. */
  placeholder?: string;
  default?: string | boolean | number;
  /** The option may be given several times; its value is then an array. */
  multiple?: boolean;
}

export interface PositionalSpec {
  name: string;
  description: string;
  required?: boolean;
  /** Takes every remaining positional. */
  variadic?: boolean;
}

export type OptionValues = Record<string, string | boolean | number | string[] | number[] | undefined>;

/** Where a command reads and writes; tests pass in-memory streams. */
export interface CliIO {
  stdin: Readable;
  stdout: Writable;
  stderr: Writable;
  /** Whether stdout/stderr are a terminal (progress bars) . */
  isTTY: boolean;
  /** Working directory relative paths resolve against. */
  cwd: string;
}

export interface CommandContext {
  positionals: string[];
  options: OptionValues;
  io: CliIO;
}

export interface Command {
  name: string;
  /** One line, shown in `blankglm --help`. */
  summary: string;
  /** Longer help: what it does, with examples. */
  description?: string;
  positionals?: PositionalSpec[];
  options: Record<string, OptionSpec>;
  /** Returns the exit code (0 when nothing is returned). */
  run(ctx: CommandContext): Promise<number | void>;
}

/** An error whose message is meant for the user as it is: printed without a stack trace. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode = 2,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

export function commandHelp(cmd: Command): string {
  const pos = (cmd.positionals ?? [])
    .map((p) => {
      const n = p.variadic ? `${p.name}...` : p.name;
      return p.required ? `<${n}>` : `[${n}]`;
    })
    .join(' ');
  const lines = [`Usage: blankglm ${cmd.name}${pos ? ' ' + pos : ''} [options]`, '', cmd.summary];
  if (cmd.description) lines.push('', cmd.description.trim());
  if (cmd.positionals?.length) {
    lines.push('', 'Arguments:');
    for (const p of cmd.positionals) lines.push(`  ${p.name.padEnd(24)} ${p.description}`);
  }
  lines.push('', 'Options:');
  const entries = Object.entries(cmd.options);
  entries.push(['help', { type: 'boolean', short: 'h', description: 'Show this help.' }]);
  for (const [name, o] of entries) {
    const flag =
      (o.short ? `-${o.short}, ` : '    ') +
      `--${name}` +
      (o.type === 'boolean' ? '' : ` <${o.placeholder ?? o.type}>`);
    const def = o.default !== undefined ? ` (default: ${String(o.default)})` : '';
    lines.push(`  ${flag.padEnd(30)} ${o.description}${def}`);
  }
  return lines.join('\n') + '\n';
}

/** Parses argv for one command; throws CliError naming the bad option or argument. */
export function parseCommandArgs(cmd: Command, argv: string[]): { positionals: string[]; options: OptionValues; help: boolean } {
  const spec: Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean }> = {
    help: { type: 'boolean', short: 'h' },
  };
  for (const [name, o] of Object.entries(cmd.options)) {
    spec[name] = { type: o.type === 'boolean' ? 'boolean' : 'string', multiple: o.multiple ?? false };
    if (o.short) spec[name]!.short = o.short;
  }
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({ args: argv, options: spec, allowPositionals: true, strict: true });
  } catch (e) {
    throw new CliError(`${(e as Error).message}\nRun 'blankglm ${cmd.name} --help' for the options.`);
  }
  const values = parsed.values as Record<string, string | boolean | string[] | undefined>;
  const options: OptionValues = {};
  for (const [name, o] of Object.entries(cmd.options)) {
    const raw = values[name];
    if (raw === undefined) {
      options[name] = o.default;
      continue;
    }
    if (o.type === 'number') {
      const toNum = (s: string): number => {
        const n = Number(s);
        if (s.trim() === '' || !Number.isFinite(n)) {
          throw new CliError(`--${name} expects a number, got '${s}'`);
        }
        return n;
      };
      options[name] = Array.isArray(raw) ? raw.map(toNum) : toNum(raw as string);
    } else {
      options[name] = raw;
    }
  }
  const positionals = parsed.positionals;
  if (!values.help) {
    const specs = cmd.positionals ?? [];
    const required = specs.filter((p) => p.required).length;
    const variadic = specs.some((p) => p.variadic);
    if (positionals.length < required) {
      const missing = specs.filter((p) => p.required)[positionals.length]!;
      throw new CliError(`missing argument <${missing.name}>: ${missing.description}\nRun 'blankglm ${cmd.name} --help' for usage.`);
    }
    if (!variadic && positionals.length > specs.length) {
      throw new CliError(`unexpected argument '${positionals[specs.length]}'\nRun 'blankglm ${cmd.name} --help' for usage.`);
    }
  }
  return { positionals, options, help: Boolean(values.help) };
}

export function mainHelp(commands: readonly Command[], version: string): string {
  const lines = [
    `blankglm ${version} — GLM (General Language Model) pretraining, blank filling and evaluation`,
    '',
    'Usage: blankglm <command> [options]',
    '',
    'Commands:',
  ];
  for (const c of commands) lines.push(`  ${c.name.padEnd(14)} ${c.summary}`);
  lines.push('', "Run 'blankglm <command> --help' for a command's options.");
  return lines.join('\n') + '\n';
}

/** Runs the CLI in-process; returns the exit code. Errors become one clear line on stderr. */
export async function runCommands(commands: readonly Command[], version: string, argv: string[], io: CliIO): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    io.stdout.write(mainHelp(commands, version));
    return name ? 0 : 1;
  }
  if (name === '--version' || name === '-v') {
    io.stdout.write(version + '\n');
    return 0;
  }
  const cmd = commands.find((c) => c.name === name);
  if (!cmd) {
    io.stderr.write(`blankglm: unknown command '${name}'\n\n` + mainHelp(commands, version));
    return 2;
  }
  try {
    const { positionals, options, help } = parseCommandArgs(cmd, rest);
    if (help) {
      io.stdout.write(commandHelp(cmd));
      return 0;
    }
    const code = await cmd.run({ positionals, options, io });
    return code ?? 0;
  } catch (e) {
    const err = e as Error & { exitCode?: number };
    const debug = process.env.BLANKGLM_DEBUG === '1';
    io.stderr.write(`blankglm ${cmd.name}: ${debug ? (err.stack ?? err.message) : err.message}\n`);
    return err instanceof CliError ? err.exitCode : 1;
  }
}
