// A progress bar on stderr, only when stderr is a terminal (never in pipes, files or CI logs).
import cliProgress from 'cli-progress';

export interface Progress {
  update(done: number, total: number): void;
  /** erases the bar's line (before other output goes to the same terminal); it redraws on the next update */
  clear(): void;
  stop(): void;
}

const NONE: Progress = { update() {}, clear() {}, stop() {} };

/** `unit` is what done/total count: 'bytes' (JSON Lines) or 'events' (lmdb) */
export function createProgress(label: string, unit: 'bytes' | 'events', stream: NodeJS.WriteStream = process.stderr): Progress {
  if (!stream.isTTY) return NONE;
  const scale = unit === 'bytes' ? 1 / 2 ** 20 : 1;
  const bar = new cliProgress.SingleBar(
    {
      stream,
      format: `${label} [{bar}] {percentage}% | {value}/{total} ${unit === 'bytes' ? 'MiB' : 'events'} | {duration_formatted}`,
      hideCursor: true,
      clearOnComplete: true,
      fps: 5,
    },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  let last = 0;
  return {
    update(done, total) {
      if (!total) return;
      const now = Date.now();
      if (started && now - last < 100 && done < total) return;
      last = now;
      if (!started) {
        bar.start(Math.round(total * scale), 0);
        started = true;
      }
      bar.update(Math.round(done * scale));
    },
    clear() {
      if (started) stream.write('\r\x1b[2K');
    },
    stop() {
      if (started) bar.stop();
    },
  };
}
