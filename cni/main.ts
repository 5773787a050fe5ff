/**
 * bin/petrel: the Petrel CNI plugin (process edge only; see run.ts and dispatch.ts). Each command
 * module loads when that command runs: VERSION needs none of them.
 */
import { main } from './run.js';
import { mark } from './trace.js';

mark('main');

main({
  component: 'cni',
  ADD: async (ctx) => (await import('./commands/add.js')).cmdAdd(ctx),
  DEL: async (ctx) => (await import('./commands/del.js')).cmdDel(ctx),
  CHECK: async (ctx) => (await import('./commands/check.js')).cmdCheck(ctx),
  STATUS: async (ctx) => (await import('./commands/status.js')).cmdStatus(ctx),
  GC: async (ctx) => (await import('./commands/gc.js')).cmdGc(ctx),
});
