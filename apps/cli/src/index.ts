// The CLI as a library: `runCli(argv, io)` runs any `blankglm` command in-process.
import { runCommands, type CliIO } from './cli.js';
import { commands } from './commands/index.js';
import { VERSION } from './version.js';

export { commands, VERSION };
export type { Command, CliIO, CommandContext, OptionSpec, PositionalSpec } from './cli.js';
export { CliError, commandHelp } from './cli.js';

export function runCli(argv: string[], io?: Partial<CliIO>): Promise<number> {
  const full: CliIO = {
    stdin: io?.stdin ?? process.stdin,
    stdout: io?.stdout ?? process.stdout,
    stderr: io?.stderr ?? process.stderr,
    isTTY: io?.isTTY ?? Boolean(process.stderr.isTTY),
    cwd: io?.cwd ?? process.cwd(),
  };
  return runCommands(commands, VERSION, argv, full);
}
