// fromLog: the replay source. A recorded log (lmdb or JSON Lines, engine/eventlog) read and decoded in
// batches, in log order, paced by the sinks (see lib/rx/from-async.ts).
import type { Observable } from 'rxjs';
import type { KrsiEvent } from '../../signals/events.ts';
import { readEvents, type ReadOptions } from '../eventlog/index.ts';
import { fromAsync } from '../../lib/rx/from-async.ts';

export function fromLog(path: string, o: ReadOptions = {}, pace?: () => Promise<void>): Observable<KrsiEvent[]> {
  return fromAsync('from-log', () => readEvents(path, o), pace);
}
