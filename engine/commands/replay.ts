import type { Command } from 'commander';

export function register(program: Command): void {
  program.command('replay').description('(not yet implemented)').action(() => {
    console.error('krsi replay: not yet implemented');
    process.exit(1);
  });
}
