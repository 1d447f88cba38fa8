import type { Command } from 'commander';

export function register(program: Command): void {
  program.command('log').description('(not yet implemented)').action(() => {
    console.error('krsi log: not yet implemented');
    process.exit(1);
  });
}
