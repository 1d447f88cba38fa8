// Output of replay/run: formatters (text for people, JSON Lines for tools) and a buffered sink that
// writes them to stdout with backpressure.
import { once } from 'node:events';
import type { Output } from '../../engine/types.ts';
import { formatJson } from './json.ts';
import { formatText, type TextContext } from './text.ts';

export { formatJson } from './json.ts';
export { formatText, formatTtl, type TextContext } from './text.ts';
export { formatSubject } from '../../engine/actions.ts';
export { createProgress, type Progress } from './progress.ts';

export type Format = 'text' | 'json';

/** collects formatted outputs and writes them in chunks; drain() waits for the stream when it is full */
export class OutputSink {
  private buf = '';
  readonly ctx: TextContext = {};
  /** called before each write to the stream (e.g. to erase a progress bar on the same terminal) */
  beforeWrite?: () => void;
  constructor(
    readonly format: Format,
    private readonly out: NodeJS.WritableStream = process.stdout,
  ) {}

  readonly write = (o: Output): void => {
    this.buf += this.format === 'json' ? formatJson(o) : formatText(o, this.ctx);
    if (this.buf.length > 1 << 16) this.push();
  };

  private push(): boolean {
    if (!this.buf) return true;
    this.beforeWrite?.();
    const ok = this.out.write(this.buf);
    this.buf = '';
    return ok;
  }

  /** writes what is buffered; resolves once the stream can take more */
  async drain(): Promise<void> {
    if (!this.push()) await once(this.out, 'drain');
  }

  async end(): Promise<void> {
    this.push();
    if (this.out === process.stdout || this.out === process.stderr) {
      await new Promise<void>((res) => this.out.write('', () => res()));
    } else {
      await new Promise<void>((res) => this.out.end(() => res()));
    }
  }
}

/** a reader that went away (`| head`) ends the command quietly instead of with a write EPIPE error */
export function exitOnEpipe(stream: NodeJS.WriteStream = process.stdout): void {
  stream.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(0);
    throw e;
  });
}
