/** bin/petrel-ipam: Petrel's IPAM as a standalone CNI IPAM plugin (see ipam-plugin.ts). */
import { ipamPluginCommands } from './ipam-plugin.js';
import { main } from './run.js';

main(ipamPluginCommands);
