// exeHashes(hasher): the enrichment stage of the live pipeline (signals → exe-hashes → record →
// evaluate). Exec events leave it with `sha256` or `sha256_error` (signals/hash.ts says how and why
// off the event loop), every batch in the order it came: a batch with exec events waits for their
// answers at most the hasher's deadline after it arrived, and every later batch waits behind it (the
// engine needs non-decreasing time). The waiting batches are bounded (maxQueued events): past that the
// oldest goes on at once with `queue_full`: the hash is dropped, never the event. On completion of the
// source the stage completes once the batches it holds have gone on (each by its deadline at the latest).
import type { OperatorFunction } from 'rxjs';
import type { ExecEvent, KrsiEvent } from './events.ts';
import type { ExeHasher, HashFailure } from './hash.ts';
import { operate } from '../lib/rx/operate.ts';
import { childLogger } from '../lib/logger.ts';

const log = childLogger('hash');

interface Held {
  batch: KrsiEvent[];
  /** exec events still without an answer */
  open: Set<ExecEvent>;
  /** Date.now() when it came */
  arrival: number;
}

export function exeHashes(hasher: ExeHasher): OperatorFunction<KrsiEvent[], KrsiEvent[]> {
  return operate<KrsiEvent[], KrsiEvent[]>('exe-hashes', (out) => {
    const queue: Held[] = [];
    let queuedEvents = 0;
    let timer: NodeJS.Timeout | undefined;
    let drained: (() => void) | undefined;
    void hasher.start().catch((err) => log.warn({ err: String(err) }, 'exe hash reader did not start'));
    hasher.onReady = () => pump(); // the deadlines moved
    hasher.heldFrom = () => queue[0]?.batch[0]?.ts;

    /** the head goes on; its exec events still open get `why` */
    const release = (why?: HashFailure) => {
      const h = queue.shift()!;
      for (const e of h.open) {
        e.sha256_error = why ?? 'timeout';
        hasher.count({ error: e.sha256_error });
      }
      h.open.clear();
      queuedEvents -= h.batch.length;
      hasher.queued = queue.length;
      out.next(h.batch);
    };
    /** hands over the answered batches at the head, then those past their deadline */
    const pump = () => {
      const now = Date.now();
      while (queue.length && (!queue[0].open.size || hasher.deadlineOf(queue[0].arrival) <= now)) release('timeout');
      if (timer) clearTimeout(timer);
      timer = queue.length ? setTimeout(pump, Math.max(0, hasher.deadlineOf(queue[0].arrival) - Date.now())) : undefined;
      if (!queue.length) drained?.();
    };

    return {
      next(batch) {
        const open = new Set<ExecEvent>();
        for (const e of batch) if (e.type === 'exec' && e.sha256 === undefined && e.sha256_error === undefined) open.add(e);
        if (!open.size && !queue.length) return out.next(batch);
        const held: Held = { batch, open, arrival: Date.now() };
        queue.push(held);
        queuedEvents += batch.length;
        hasher.queued = queue.length;
        for (const e of open) {
          void hasher.hash(e, held.arrival).then((o) => {
            if (!held.open.delete(e)) return; // went on already (deadline, queue full)
            if (o.sha256 !== undefined) e.sha256 = o.sha256;
            else e.sha256_error = o.error;
            hasher.count(o);
            if (!held.open.size && queue[0] === held) pump();
          });
        }
        // bounded: the oldest batches go on at once, their hashes dropped (counted), never their events
        while (queuedEvents > hasher.maxQueued && queue.length > 1) release('queue_full');
        if (!timer) pump();
      },
      complete() {
        if (!queue.length) return undefined;
        return new Promise<void>((r) => (drained = r));
      },
      finalize() {
        if (timer) clearTimeout(timer);
        hasher.onReady = undefined;
        hasher.heldFrom = () => undefined;
      },
    };
  });
}
