#!/usr/bin/env node
// The CLI is TypeScript run through tsx, like the server; this shim lets `npx earshot` work under plain node.
import { register } from 'tsx/esm/api';

register();
const { run } = await import('../cli.ts');
await run();
