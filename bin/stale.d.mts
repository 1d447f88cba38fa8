// types of bin/stale.mjs, for test/helpers/krsi.ts
export declare const SOURCE_DIRS: string[];
export declare function staleDist(root: string | URL): string | undefined;
