import type { Command } from 'commander';

export function register(program: Command): void {
  program.command('test').description('(not yet implemented)').action(() => {
    console.error('krsi test: not yet implemented');
    process.exit(1);
  });
}
