#!/usr/bin/env node
// thin launcher: register the TypeScript loader, then hand over to the CLI
import { register } from 'tsx/esm/api';
register();
await import('../engine/cli.ts');
