/** bin/petrel: the Petrel CNI plugin (process edge only; see run.ts and dispatch.ts). */
import { cmdAdd } from './commands/add.js';
import { cmdCheck } from './commands/check.js';
import { cmdDel } from './commands/del.js';
import { cmdGc } from './commands/gc.js';
import { cmdStatus } from './commands/status.js';
import { main } from './run.js';

main({ component: 'cni', ADD: cmdAdd, DEL: cmdDel, CHECK: cmdCheck, STATUS: cmdStatus, GC: cmdGc });
