import type { Command } from 'commander';

export function register(program: Command): void {
  program.command('verdicts').description('(not yet implemented)').action(() => {
    console.error('krsi verdicts: not yet implemented');
    process.exit(1);
  });
}
