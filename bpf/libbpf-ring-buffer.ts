// libbpf's own ring buffer consumer: what bench/ringbuf.ts measures RingBuffer against.
import koffi from 'koffi';
import { check, nonNull } from './errors.ts';
import type { BpfMap } from './map.ts';
import { N, type Ptr } from './native.ts';

let sampleFn: ReturnType<typeof koffi.proto> | undefined;

/**
 * The same interface through libbpf's own consumer (ring_buffer__new / __consume, one koffi callback per
 * record, readiness from ring_buffer__epoll_fd). Slower than RingBuffer.
 */
export class LibbpfRingBuffer {
  private rb: Ptr | null = null;
  private cb: bigint | null = null;
  private poll: { close(): void } | null = null;
  private readonly fds: number[] = [];
  count = 0;

  constructor(private readonly onRecord: (data: Buffer, source: number) => void) {}

  add(map: BpfMap): number {
    const n = N();
    if (!this.cb) {
      sampleFn ??= koffi.proto('int krsi_ring_sample(void *ctx, void *data, size_t size)');
      this.cb = koffi.register((ctx: bigint | null, data: bigint, size: number) => {
        this.count++;
        this.onRecord(Buffer.from(koffi.view(data, size)), Number(ctx ?? 0n));
        return 0;
      }, koffi.pointer(sampleFn));
    }
    const source = this.fds.length;
    if (this.rb === null) this.rb = nonNull(`ring_buffer__new ${map.name}`, n.ring_buffer__new(map.fd, this.cb, null, null) as Ptr | null);
    else check(`ring_buffer__add ${map.name}`, n.ring_buffer__add(this.rb, map.fd, this.cb, BigInt(source)));
    this.fds.push(map.fd);
    return source;
  }

  start(): void {
    if (this.rb === null || this.poll) return;
    const rb = this.rb;
    this.poll = koffi.node.poll(N().ring_buffer__epoll_fd(rb), { readable: true }, () => {
      check('ring_buffer__consume', N().ring_buffer__consume(rb));
    });
    setImmediate(() => this.rb && N().ring_buffer__consume(this.rb));
  }

  /** consume everything waiting now */
  drainAll(): number {
    return this.rb === null ? 0 : check('ring_buffer__consume', N().ring_buffer__consume(this.rb));
  }

  async stop(): Promise<void> {
    this.poll?.close();
    this.poll = null;
    if (this.rb !== null) N().ring_buffer__free(this.rb);
    this.rb = null;
    if (this.cb) koffi.unregister(this.cb);
    this.cb = null;
    await new Promise<void>((res) => setImmediate(res));
  }
}
