import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { TestScheduler } from 'rxjs/testing';
import { operate } from '../../../lib/rx/operate.ts';
import { heartbeat } from '../../../engine/rx/heartbeat.ts';

const newScheduler = () => new TestScheduler((actual, expected) => assert.deepEqual(actual, expected));

describe('rx/operate', () => {
  test('routes a throw in next into the stream and ignores later values', () => {
    newScheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
      const src = cold('-a-b-c-|');
      const op = operate<string, string>('upper', (out) => ({
        next(v) {
          if (v === 'b') throw new Error('bad b');
          out.next(v.toUpperCase());
        },
      }));
      expectObservable(src.pipe(op)).toBe('-A-#', { A: 'A' }, new Error('bad b'));
      expectSubscriptions(src.subscriptions).toBe('^--!');
    });
  });

  test('routes a throw in complete; upstream errors pass through', () => {
    newScheduler().run(({ cold, expectObservable }) => {
      const boom = operate<string, string>('x', () => ({ next() {}, complete() { throw new Error('flush failed'); } }));
      expectObservable(cold('--|').pipe(boom)).toBe('--#', undefined, new Error('flush failed'));
      const id = operate<string, string>('id', (out) => ({ next: (v) => out.next(v) }));
      expectObservable(cold('-a-#', undefined, new Error('up')).pipe(id)).toBe('-a-#', undefined, new Error('up'));
    });
  });
});

describe('rx/heartbeat', () => {
  test('ticks every period while the source lives, values pass through, stops on completion', () => {
    const ts = newScheduler();
    ts.run(({ cold, expectObservable }) => {
      const src = cold('-a 8ms b 3ms |');
      expectObservable(src.pipe(heartbeat({ every: 5, clock: () => ts.now(), scheduler: ts }))).toBe('-a 3ms t 4ms (bu)|', {
        a: 'a',
        b: 'b',
        t: { tick: 5 },
        u: { tick: 10 },
      } as any);
    });
  });

  test('without a clock, event time is extrapolated from the latest event (none before the first)', () => {
    const ts = newScheduler();
    ts.run(({ cold, expectObservable }) => {
      const src = cold('3ms a 5ms |', { a: { ts: 1_000_000_000 } });
      expectObservable(src.pipe(heartbeat({ every: 2, scheduler: ts }))).toBe('3ms a t 1ms u 1ms v|', {
        a: { ts: 1_000_000_000 },
        t: { tick: 1_001_000_000 },
        u: { tick: 1_003_000_000 },
        v: { tick: 1_005_000_000 },
      } as any);
    });
  });
});
