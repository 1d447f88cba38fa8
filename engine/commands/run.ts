import type { Command } from 'commander';

export function register(program: Command): void {
  program.command('run').description('(not yet implemented)').action(() => {
    console.error('krsi run: not yet implemented');
    process.exit(1);
  });
}
