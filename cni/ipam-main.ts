/** bin/petrel-ipam: Petrel's IPAM as a standalone CNI IPAM plugin (see ipam-plugin.ts). */
import { main } from './run.js';

const commands = () => import('./ipam-plugin.js').then((m) => m.ipamPluginCommands);

main({
  component: 'cni-ipam',
  ADD: async (ctx) => (await commands()).ADD(ctx),
  DEL: async (ctx) => (await commands()).DEL(ctx),
  CHECK: async (ctx) => (await commands()).CHECK(ctx),
  STATUS: async (ctx) => (await commands()).STATUS(ctx),
  GC: async (ctx) => (await commands()).GC(ctx),
});
