/**
 * Pure: what a lab is made of, as recorded in /run/petrel-lab/NAME/state.json. Everything `lab down`
 * removes is listed here (namespaces, process group leaders, the lab directory), so it removes that
 * and nothing else. Written after every step of `lab up` (a failed or interrupted `up` leaves a
 * state that `down` can still clean), and by add-pod, rm-pod, kill-agent and start-agent.
 */
import type { ContainerdState } from './cri/containerd.js';
import type { LabMode, LabPool } from './layout.js';

export const STATE_VERSION = 1;

export interface NodeState {
  name: string;
  /** 1-based. */
  index: number;
  netns: string;
  /** Node address (no prefix length) and ADDR/LEN as given to the agent. */
  ip: string;
  cidr: string;
  ip6?: string;
  cidr6?: string;
  /** 'fabric' (on the lab bridge) or 'routed' (behind the router). */
  subnet: 'fabric' | 'routed';
  /** BGP AS (the cluster AS unless the node has its own). */
  asNumber: number;
  socket: string;
  logFile: string;
  /** The agent's stdout and stderr. */
  outFile: string;
  /** Reachable from the fabric netns (and from the other nodes). */
  statusUrl: string;
  /** argv of the agent (without the node executable), as every start uses it. */
  agentArgv: string[];
  /** PID of the running agent (its process group leader); absent while stopped. */
  agentPid?: number;
  /** A --cri lab: the node's containerd (its pods go through it over CRI). */
  containerd?: ContainerdState;
  /**
   * A guest lab (IPIP modes): the node is a qemu guest (guest-nodes.ts), netns is ''. `name` is the
   * rig's guest name, `dir` its part of the run directory on this side (/vm/NAME inside), `pid` qemu's.
   */
  guest?: { name: string; dir: string; pid: number; tap: string };
}

export interface PodState {
  name: string;
  node: string;
  /** The pod's netns name (/var/run/netns/NAME): the lab's PREFIX-NAME, or containerd's cni-UUID. */
  netns: string;
  /** The CNI container ID (in a --cri lab, the sandbox ID). */
  containerId: string;
  /** A --cri lab: the pod sandbox (RunPodSandbox) and the pod UID it was made with. */
  sandboxId?: string;
  uid?: string;
  ip: string;
  ip6: string;
  pools?: string[];
  assignIpv4: boolean;
  assignIpv6: boolean;
}

/** A process the lab started besides etcd and the agents (an external router, a capture). */
export interface ProcState {
  pid: number;
  what: string;
  netns: string;
  outFile: string;
  /** The command (its command line must still contain it for down to end the PID). */
  cmd: string;
}

export interface LabState {
  version: number;
  name: string;
  /** Address index (layout.ts): 10.99.INDEX.0/24. */
  index: number;
  /** Namespace name prefix. */
  prefix: string;
  /** Everything on disk the lab made (sockets, logs, etcd data, state.json): removed by down. */
  dir: string;
  mode: LabMode;
  ipv6: boolean;
  pools: LabPool[];
  /** Node executable, bin/ (petrel-agent, petrelctl) and the plugin directory. */
  nodeExec: string;
  binDir: string;
  pluginDir: string;
  createdAt: string;
  fabric: string;
  router?: string;
  /** Every namespace made, in creation order (pods included). */
  netns: string[];
  etcd?: { pid: number; endpoint: string; dataDir: string; outFile: string; argv: string[] };
  nodes: NodeState[];
  pods: PodState[];
  procs: ProcState[];
  externalRouter?: { netns: string; ip: string; ip6?: string; asNumber: number };
  /**
   * A --cri lab (`lab up --cri`): pods are sandboxes of each node's containerd. `network` is the
   * conflist name (its CNI result files); hostPathsBefore says which shared host directories
   * existed before the lab's containerds ran (down removes only the others, and only when empty).
   */
  cri?: { network: string; hostPathsBefore: { runContainerd: boolean; varLibCni: boolean } };
  /**
   * A guest lab: the nodes are qemu guests on the fabric bridge, held by the keeper process (one of
   * `procs`, what 'guests'); `runDir` is the rig's run directory, inside the lab directory.
   */
  guests?: { runDir: string; keeperPid: number };
}

export class LabStateError extends Error {
  override readonly name = 'LabStateError';
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isStr = (v: unknown): v is string => typeof v === 'string';
const isInt = (v: unknown): v is number => Number.isInteger(v);

function need(ok: boolean, what: string): void {
  if (!ok) throw new LabStateError(`state.json: ${what}`);
}

/** Parses and checks a state.json text (the fields down/status/exec rely on); throws LabStateError. */
export function parseState(text: string): LabState {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (err) {
    throw new LabStateError(`state.json is not JSON: ${(err as Error).message}`, { cause: err });
  }
  need(isObj(v), 'not an object');
  const s = v as Record<string, unknown>;
  need(s.version === STATE_VERSION, `version ${String(s.version)} (this petrelctl reads ${STATE_VERSION})`);
  for (const k of ['name', 'prefix', 'dir', 'mode', 'nodeExec', 'binDir', 'pluginDir', 'fabric'])
    need(isStr(s[k]), `${k} must be a string`);
  need(isInt(s.index), 'index must be an integer');
  need(Array.isArray(s.netns) && s.netns.every(isStr), 'netns must be a list of names');
  need(Array.isArray(s.nodes), 'nodes must be a list');
  need(Array.isArray(s.pods), 'pods must be a list');
  need(Array.isArray(s.procs), 'procs must be a list');
  for (const n of s.nodes as unknown[]) {
    need(
      isObj(n) && isStr(n.name) && isStr(n.netns) && isStr(n.ip) && isInt(n.index),
      'a node lacks name/netns/ip/index',
    );
    const node = n as Record<string, unknown>;
    need(Array.isArray(node.agentArgv) && node.agentArgv.every(isStr), `node ${String(node.name)}: agentArgv`);
    need(node.agentPid === undefined || isInt(node.agentPid), `node ${String(node.name)}: agentPid`);
    const g = node.guest;
    if (g !== undefined)
      need(
        isObj(g) && isStr(g.name) && isStr(g.dir) && isInt(g.pid) && g.dir.startsWith(`${String(s.dir)}/`),
        `node ${String(node.name)}: guest lacks name/dir/pid, or its dir is not in the lab's`,
      );
    const ctd = node.containerd;
    if (ctd !== undefined)
      need(
        isObj(ctd) &&
          isInt(ctd.pid) &&
          isStr(ctd.socket) &&
          isStr(ctd.configFile) &&
          isStr(ctd.dir) &&
          ctd.dir.startsWith(`${String(s.dir)}/`),
        `node ${String(node.name)}: containerd lacks pid/socket/configFile, or its dir is not in the lab's`,
      );
  }
  if (s.guests !== undefined)
    need(isObj(s.guests) && isStr(s.guests.runDir) && isInt(s.guests.keeperPid), 'guests lacks runDir/keeperPid');
  if (s.cri !== undefined) need(isObj(s.cri) && isStr(s.cri.network), 'cri lacks its network');
  for (const p of s.pods as unknown[])
    need(
      isObj(p) && isStr(p.name) && isStr(p.node) && isStr(p.netns) && isStr(p.containerId),
      'a pod lacks name/node/netns/containerId',
    );
  for (const p of s.pods as Record<string, unknown>[])
    if (p.sandboxId !== undefined)
      need(
        isStr(p.sandboxId) && String(p.netns).startsWith('cni-'),
        `pod ${String(p.name)}: sandbox without a cni- netns`,
      );
  for (const p of s.procs as unknown[]) need(isObj(p) && isInt(p.pid), 'a process lacks its pid');
  if (s.etcd !== undefined)
    need(isObj(s.etcd) && isInt(s.etcd.pid) && isStr(s.etcd.endpoint), 'etcd lacks pid/endpoint');
  // Everything down deletes must be the lab's own: namespaces under its prefix, its directory.
  const prefix = s.prefix as string;
  for (const ns of s.netns as string[]) need(ns.startsWith(`${prefix}-`), `namespace ${ns} is not under ${prefix}-`);
  return v as unknown as LabState;
}

export function serializeState(s: LabState): string {
  return `${JSON.stringify(s, null, 2)}\n`;
}

/** Finds a node by name ("node-2") or 1-based index ("2"). */
export function findNode(s: LabState, ref: string): NodeState | undefined {
  return s.nodes.find((n) => n.name === ref || String(n.index) === ref);
}
