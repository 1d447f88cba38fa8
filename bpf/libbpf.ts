// libbpf for the rest of krsi: the one module outside bpf/ imports. Each concern is its own file:
//   native.ts      the koffi binding (bound on first use), requireLiveBpf, libbpfPath/Version
//   print.ts       libbpf's log into krsi's logger (prefix libbpf), quietly()
//   errors.ts      BpfError (errno and libbpf's text)
//   mounts.ts      bpffs, tracefs and securityfs, mounted when missing
//   info.ts        what the kernel says an fd is: map, program and link info
//   pinning.ts     pinning and opening pins (their filesystem checks are pins.ts)
//   map.ts         BpfMap
//   object.ts      BpfObject: open, globals, load, attach, pin links
//   ring-buffer.ts RingBuffer (the mmapped ring read in JS); libbpf-ring-buffer.ts libbpf's consumer
export { BpfPrereqError, LIBBPF_PATHS, libbpfPath, libbpfVersion, requireLiveBpf } from './native.ts';
export { quietly } from './print.ts';
export { BpfError } from './errors.ts';
export { ensureBpffs, ensureSecurityfs, ensureTracefs } from './mounts.ts';
export { linkInfo, mapInfo, objKind, progInfo, progInfoById, type BpfObjKind, type LinkInfo, type MapInfo, type ProgInfo } from './info.ts';
export { PIN_ROOT, closeFd, openPin, pinFd, unpinPath } from './pinning.ts';
export { BPF_ANY, BPF_EXIST, BPF_MAP_TYPE_RINGBUF, BPF_NOEXIST, BpfMap, createMap } from './map.ts';
export { BpfObject } from './object.ts';
export { RingBuffer, type RecordHandler, type RecordViewHandler, type RingBufferOptions } from './ring-buffer.ts';
export { LibbpfRingBuffer } from './libbpf-ring-buffer.ts';
