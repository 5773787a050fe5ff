/**
 * Shell: lab nodes that are real-kernel qemu guests (agent/lab/vm) instead of network namespaces,
 * for the IPIP modes (this machine's kernel has no `ipip`; a guest runs the stock Debian kernel,
 * which has). The guests' taps sit on the lab's fabric bridge, so etcd, the agents' status
 * endpoints, the packet capture and `petrelctl` in the fabric netns work as with netns nodes.
 *
 *   keeper      `petrelctl lab keep-guests SPEC` (a lab process in the fabric netns, its own
 *               process group): boots the guests in serve mode (startGuests), writes READY
 *               (GuestsReady JSON) and keeps the rig's heartbeat until SIGTERM; qemu processes are
 *               in its process group, so ending the group ends the guests. If the keeper dies the
 *               guests power themselves off (heartbeat stale for 30 s).
 *   commands    every later lab command (add-pod, kill-agent, exec, status) talks to a guest
 *               through its command queue in the run directory (guestExec), one shell script per
 *               step: a process start in a TCG guest costs 0.1-2.5 s, so steps are batched.
 *   agent       started in the guest by a script (setsid, PID in /vm/NODE/agent.pid), socket at
 *               /run/petrel/agent.sock (guest-local), log on the run directory (readable here).
 *   pods        a netns inside the guest wired by the real plugin; each pod runs its echo server
 *               (the lab's probe target) for its lifetime: starting one per measurement costs a
 *               node start per pod.
 */
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { setTimeout as delay } from 'node:timers/promises';
import { LabConfigError } from './layout.js';
import type { LabState, NodeState, PodState } from './state.js';
import { createRigNetwork, type ExecResult as GuestExecResult, GuestMode, guestExec, startGuests } from './vm/index.js';

/** What `lab up` asks the keeper for (written as JSON to SPEC). */
export interface GuestsSpec {
  /** The fabric netns (holds br0 with bridgeCidr). */
  netns: string;
  bridgeCidr: string;
  extraBridgeCidrs: string[];
  /** One per lab node, in order: address with prefix and default gateway. */
  nodes: { cidr: string; gateway: string }[];
  memMb: number;
  bootTimeoutMs: number;
  /** The run directory is made here (the lab directory: down removes it). */
  runDirParent: string;
  /** Written when every guest is ready (GuestsReady), or ERROR with the reason. */
  ready: string;
  error: string;
}

export interface GuestsReady {
  runDir: string;
  guests: { name: string; ip: string; dir: string; pid: number; tap: string; bootMs: number }[];
}

/** Where a guest node's agent socket is (inside the guest). */
export const GUEST_AGENT_SOCKET = '/run/petrel/agent.sock';

function writeAtomic(file: string, text: string): void {
  writeFileSync(`${file}.tmp`, text);
  renameSync(`${file}.tmp`, file);
}

/** The keeper's main: boots the guests, reports, and holds them until SIGTERM/SIGINT. */
export async function keepGuests(specFile: string): Promise<number> {
  const spec = JSON.parse(readFileSync(specFile, 'utf8')) as GuestsSpec;
  const log = (l: string) => process.stderr.write(`${l}\n`);
  let stop: () => void = () => {};
  const stopped = new Promise<void>((resolve) => {
    stop = resolve;
  });
  process.once('SIGTERM', () => stop());
  process.once('SIGINT', () => stop());
  const network = await createRigNetwork({
    netns: spec.netns,
    bridgeCidr: spec.bridgeCidr,
    extraBridgeCidrs: spec.extraBridgeCidrs,
  });
  try {
    const rig = await startGuests({
      n: spec.nodes.length,
      network,
      bridgeCidr: spec.bridgeCidr,
      extraBridgeCidrs: spec.extraBridgeCidrs,
      mode: GuestMode.Serve,
      memMb: spec.memMb,
      bootTimeoutMs: spec.bootTimeoutMs,
      runDirParent: spec.runDirParent,
      guests: spec.nodes.map((n) => ({ cidr: n.cidr, gateway: n.gateway })),
      log,
    });
    const ready: GuestsReady = {
      runDir: rig.runDir,
      guests: rig.guests.map((g) => ({
        name: g.name,
        ip: g.ip,
        dir: g.dir,
        pid: g.pid,
        tap: g.tap,
        bootMs: Math.round(g.bootMs),
      })),
    };
    writeAtomic(spec.ready, JSON.stringify(ready));
    // The rig's heartbeat timer is unreferenced: this one keeps the process alive until told to stop.
    const hold = setInterval(() => {}, 1 << 30);
    await stopped;
    clearInterval(hold);
    await rig.stop(20_000).catch(() => undefined);
    await rig.destroy();
    return 0;
  } catch (err) {
    writeAtomic(spec.error, (err as Error).message);
    return 1;
  } finally {
    await network.destroy();
  }
}

/** Waits for the keeper's READY (or ERROR, or its exit). */
export async function waitGuestsReady(
  spec: GuestsSpec,
  keeperExited: () => boolean,
  keeperOutput: () => string,
): Promise<GuestsReady> {
  const deadline = performance.now() + spec.bootTimeoutMs + 60_000;
  for (;;) {
    if (existsSync(spec.ready)) return JSON.parse(readFileSync(spec.ready, 'utf8')) as GuestsReady;
    if (existsSync(spec.error)) throw new Error(`guests did not boot: ${readFileSync(spec.error, 'utf8')}`);
    if (keeperExited()) throw new Error(`the guest keeper exited: ${keeperOutput().slice(-3000)}`);
    if (performance.now() > deadline) throw new Error(`guests not ready in time: ${keeperOutput().slice(-3000)}`);
    await delay(100);
  }
}

/** POSIX shell single quotes. */
export function sq(v: string): string {
  return `'${v.replaceAll("'", `'\\''`)}'`;
}

/** A here-document that writes `text` to `file` (the delimiter cannot occur in the text). */
function heredoc(file: string, text: string): string {
  const tag = 'PETREL_LAB_EOF';
  if (text.includes(tag)) throw new Error('heredoc text contains its delimiter');
  return `cat > ${sq(file)} <<'${tag}'\n${text}\n${tag}\n`;
}

/** The guest path of a file in the guest's part of the run directory (mounted at /vm/NAME). */
export function guestPath(n: NodeState, file: string): string {
  if (!n.guest) throw new Error(`${n.name} is not a guest`);
  return `/vm/${n.guest.name}/${file}`;
}

/** Runs `script` in node `n`'s guest (its command queue). */
export function execInGuest(n: NodeState, script: string, timeoutMs = 120_000): Promise<GuestExecResult> {
  if (!n.guest) throw new Error(`${n.name} is not a guest`);
  return guestExec({ name: n.guest.name, dir: n.guest.dir, pid: n.guest.pid }, `. /vm/lib.sh\n${script}`, timeoutMs);
}

/** Starts the agent (setsid, its own group) and waits for its socket; prints `pid N`. */
export function startAgentScript(s: LabState, n: NodeState, extraArgs: string[]): string {
  const pidFile = guestPath(n, 'agent.pid');
  const out = guestPath(n, 'agent.out');
  const argv = [s.nodeExec, ...n.agentArgv, ...extraArgs].map(sq).join(' ');
  return `mkdir -p /run/petrel
rm -f ${sq(n.socket)}
cd /
setsid ${argv} >> ${sq(out)} 2>&1 < /dev/null &
pid=$!
echo "$pid" > ${sq(pidFile)}
end=$(( $(vm_now) + 120 ))
until [ -S ${sq(n.socket)} ]; do
  kill -0 "$pid" 2>/dev/null || { echo "agent exited:"; tail -c 3000 ${sq(out)}; exit 1; }
  [ "$(vm_now)" -ge "$end" ] && { echo "no agent socket after 120 s:"; tail -c 3000 ${sq(out)}; exit 1; }
  vm_sleep 100000
done
echo "pid $pid"
`;
}

/** Ends the agent's group: SIGNAL, SIGKILL after graceSec (0: at once). */
export function stopAgentScript(n: NodeState, signal: string, graceSec: number): string {
  const pidFile = guestPath(n, 'agent.pid');
  return `pid=$(cat ${sq(pidFile)} 2>/dev/null) || { echo "not running"; exit 0; }
kill -${signal.replace(/^SIG/, '')} -"$pid" 2>/dev/null || kill -${signal.replace(/^SIG/, '')} "$pid" 2>/dev/null
i=0
while kill -0 "$pid" 2>/dev/null && [ $i -lt ${graceSec * 10} ]; do vm_sleep 100000; i=$((i + 1)); done
kill -KILL -"$pid" 2>/dev/null
rm -f ${sq(pidFile)}
echo "stopped $pid"
`;
}

export interface GuestCniEnv {
  command: 'ADD' | 'DEL';
  pod: PodState;
  netconf: unknown;
  plugin: string;
  cniPath: string;
}

function cniCall(e: GuestCniEnv, out: string): string {
  const conf = `/tmp/${e.pod.netns}.${e.command}.conf`;
  return `${heredoc(conf, JSON.stringify(e.netconf))}CNI_COMMAND=${e.command} CNI_CONTAINERID=${sq(e.pod.containerId)} CNI_NETNS=${sq(`/var/run/netns/${e.pod.netns}`)} CNI_IFNAME=eth0 \\
CNI_PATH=${sq(e.cniPath)} CNI_ARGS=${sq(`IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=${e.pod.name}`)} \\
  ${sq(e.plugin)} < ${sq(conf)} > ${sq(out)} 2>&1`;
}

/**
 * A pod in the guest: its netns, CNI ADD (the result JSON is the script's output), then its echo
 * server (ECHO_JS PORT NAME) in the pod until it says it listens. On an ADD failure the netns is
 * deleted and the script exits 22 with the plugin's output.
 */
export function addPodScript(e: GuestCniEnv, nodeExec: string, echoJs: string, port: number): string {
  const ns = e.pod.netns;
  const res = `/tmp/${ns}.add.json`;
  const echoLog = `/tmp/${ns}.echo`;
  return `ip netns add ${sq(ns)} && ip -n ${sq(ns)} link set lo up || exit 21
${cniCall(e, res)} || { cat ${sq(res)}; ip netns del ${sq(ns)}; exit 22; }
${heredoc('/tmp/petrel-lab-echo.js', echoJs)}setsid ip netns exec ${sq(ns)} ${sq(nodeExec)} -e "$(cat /tmp/petrel-lab-echo.js)" ${port} ${sq(e.pod.name)} > ${sq(echoLog)} 2>&1 < /dev/null &
echo $! > ${sq(`${echoLog}.pid`)}
end=$(( $(vm_now) + 90 ))
until grep -q listening ${sq(echoLog)} 2>/dev/null; do
  [ "$(vm_now)" -ge "$end" ] && { echo "echo server of ${e.pod.name} did not start:" >&2; cat ${sq(echoLog)} >&2; break; }
  vm_sleep 200000
done
printf '@@RESULT '; cat ${sq(res)}
`;
}

/** The pod's echo server ended, CNI DEL (its output after a marker line on failure), the netns deleted. */
export function removePodScript(e: GuestCniEnv): string {
  const ns = e.pod.netns;
  const echoPid = `/tmp/${ns}.echo.pid`;
  const out = `/tmp/${ns}.del.out`;
  return `p=$(cat ${sq(echoPid)} 2>/dev/null) && kill -KILL -"$p" 2>/dev/null
rm -f ${sq(echoPid)}
${cniCall(e, out)}
rc=$?
ip netns del ${sq(ns)} 2>/dev/null
[ $rc = 0 ] || { cat ${sq(out)}; exit 22; }
`;
}

/**
 * Every source pod of this guest connects to its targets at once (CONNECT_ALL_JS MS TARGET...),
 * all pods in parallel; the output is one `@@POD JSON` line per pod.
 */
export function probeScript(
  nodeExec: string,
  connectAllJs: string,
  timeoutMs: number,
  sources: { pod: PodState; targets: string[] }[],
): string {
  const lines = sources
    .filter((x) => x.targets.length > 0)
    .map(
      (x) =>
        `ip netns exec ${sq(x.pod.netns)} ${sq(nodeExec)} -e "$(cat /tmp/petrel-lab-connect.js)" ${timeoutMs} ${x.targets.map(sq).join(' ')} > ${sq(`/tmp/${x.pod.netns}.probe`)} 2>&1 &`,
    );
  const report = sources
    .filter((x) => x.targets.length > 0)
    .map((x) => `printf '@@%s ' ${sq(x.pod.name)}; cat ${sq(`/tmp/${x.pod.netns}.probe`)}; echo`);
  return `${heredoc('/tmp/petrel-lab-connect.js', connectAllJs)}${lines.join('\n')}
wait
${report.join('\n')}
`;
}

/** Parses probeScript's output: pod name -> its CONNECT_ALL answer text. */
export function parseProbeOutput(out: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of out.split('\n')) {
    const r = /^@@(\S+) (.*)$/.exec(line);
    if (r) m.set(r[1] as string, r[2] as string);
  }
  return m;
}

/** `lab exec` in a guest: CMD (in POD's netns, when given) with the lab's environment. */
export function execScript(cmd: string[], env: Record<string, string>, podNetns?: string): string {
  if (cmd.length === 0) throw new LabConfigError('lab exec NODE|POD -- CMD [ARGS...]');
  const exports = Object.entries(env)
    .map(([k, v]) => `export ${k}=${sq(v)}`)
    .join('\n');
  const argv = cmd.map(sq).join(' ');
  return `${exports}\ncd /\n${podNetns ? `exec ip netns exec ${sq(podNetns)} ${argv}` : `exec ${argv}`}\n`;
}
