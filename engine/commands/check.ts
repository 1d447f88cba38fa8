import type { Command } from 'commander';

export function register(program: Command): void {
  program.command('check').description('(not yet implemented)').action(() => {
    console.error('krsi check: not yet implemented');
    process.exit(1);
  });
}
