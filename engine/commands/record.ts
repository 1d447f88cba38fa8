import type { Command } from 'commander';

export function register(program: Command): void {
  program.command('record').description('(not yet implemented)').action(() => {
    console.error('krsi record: not yet implemented');
    process.exit(1);
  });
}
