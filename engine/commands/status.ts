import type { Command } from 'commander';

export function register(program: Command): void {
  program.command('status').description('(not yet implemented)').action(() => {
    console.error('krsi status: not yet implemented');
    process.exit(1);
  });
}
