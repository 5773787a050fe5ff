/** What every command gets: the validated request and the injected shells. */
import type { IpamClient } from '../agent-client.js';
import type { PluginRunner } from '../delegate.js';
import type { PluginLogger as Logger } from '../log.js';
import type { NetConf } from '../netconf.js';
import type { NetnsExec } from '../netns.js';
import type { CniEnv } from '../types.js';

export interface CommandContext {
  env: CniEnv;
  conf: NetConf;
  /** The raw stdin, passed unchanged to delegated plugins. */
  stdin: string;
  netns: NetnsExec;
  /** The agent client, created on first use (VERSION never opens the socket). */
  ipam(): IpamClient;
  runner: PluginRunner;
  log: Logger;
}
