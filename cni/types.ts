/** CNI data shapes shared by the commands (SPEC "Result Types"), in their 1.1.0 form. */

export interface CniInterface {
  name: string;
  mac?: string;
  /** Netns path for interfaces inside the container; absent for host interfaces. */
  sandbox?: string;
  mtu?: number;
}

export interface CniIpConfig {
  /** CIDR form, e.g. "10.244.0.5/32". */
  address: string;
  gateway?: string;
  /** Index into `interfaces`. */
  interface?: number;
}

export interface CniRoute {
  dst: string;
  gw?: string;
  mtu?: number;
  advmss?: number;
  priority?: number;
  table?: number;
  /** 0 global, 253 link, 254 host. */
  scope?: number;
}

export interface CniDns {
  nameservers?: string[];
  domain?: string;
  search?: string[];
  options?: string[];
}

export interface CniResult {
  interfaces?: CniInterface[];
  ips?: CniIpConfig[];
  routes?: CniRoute[];
  dns?: CniDns;
}

export type CniCommand = 'ADD' | 'DEL' | 'CHECK' | 'VERSION' | 'STATUS' | 'GC';

/** The CNI_* environment, validated for the command (empty strings are treated as absent). */
export interface CniEnv {
  command: CniCommand;
  containerId: string;
  /** Empty on DEL when the runtime has no netns any more (CNI SPEC: optional for DEL). */
  netns: string;
  ifName: string;
  /** CNI_PATH split on ':' (empty entries dropped). */
  path: string[];
  args: CniArgs;
  /** CNI_ARGS as the runtime sent it, for delegated plugins. */
  rawArgs: string;
}

/** CNI_ARGS (CONVENTIONS.md): any order, `K=V;K=V`. */
export interface CniArgs {
  podNamespace?: string;
  podName?: string;
  infraContainerId?: string;
  podUid?: string;
  /** `IP=<ip>[/<len>]`: a requested address (CONVENTIONS.md, Calico). */
  ip?: string;
  ignoreUnknown: boolean;
}
