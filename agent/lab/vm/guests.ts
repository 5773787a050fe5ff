/**
 * Shell: boots N qemu (TCG) guests in parallel on the rig's bridge and drives them.
 *
 *   const rig = await startGuests({ n: 3, bridgeCidr: '10.99.0.1/24', command: 'ip -br addr' });
 *   const results = await rig.wait();          // mode 'run': each guest runs its command, powers off
 *   await rig.destroy();
 *
 *   const rig = await startGuests({ n: 3, bridgeCidr, mode: 'serve', command: agentScript });
 *   const r = await rig.exec(1, 'ip route');   // later commands through the shared run dir
 *   await rig.stop();                          // service gets SIGTERM, guests power off
 *
 * Complicating factors:
 * - Every guest runs the host's stock kernel on the host's root filesystem (9p, read-only, tmpfs
 *   overlay): host binaries (node, ip, tcpdump) and this checkout are visible in the guest, but
 *   a file the guest has already read may stay cached; build before booting.
 * - Under TCG, process starts in the guest cost 0.1-0.5 s (node's first start ~2.5 s): command
 *   files are batched, and guest-side polling uses shell builtins and the static busybox.
 * - Results travel through the run directory (9p, cache=none), never over the network: the test
 *   network stays exactly what the test builds.
 * - qemu is started through nsenter (which execs), so the PID we hold is qemu's; every clean-up
 *   path kills by that PID. A guest in serve mode also powers itself off when the host's
 *   heartbeat file stops changing for 30 s (the host process died without cleaning up).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import {
  chmodSync,
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { formatIpv4, guestAddress, guestMac, parseIpv4, parseIpv4Cidr, RigConfigError } from './addr.js';
import { atExit } from './cleanup.js';
import { VmError, VmErrorCode } from './errors.js';
import { LIB } from './guest-scripts.js';
import { hostRunSync } from './host.js';
import { ensureImage, type ImageOptions, type VmImage } from './image.js';
import { createRigNetwork, netnsPath, type RigNetwork } from './net.js';

export const GuestMode = { Run: 'run', Serve: 'serve' } as const;
export type GuestMode = (typeof GuestMode)[keyof typeof GuestMode];

/** Per-guest overrides (index 0 is guest 1). */
export interface GuestSpec {
  /** Address with prefix (default: bridge network + 10 + K, the bridge's prefix). */
  cidr?: string;
  /** Default gateway; null for none (default: the bridge address of the guest's subnet). */
  gateway?: string | null;
  /** Extra environment for this guest only. */
  env?: Record<string, string>;
  /** Command file text for this guest (default: the rig's command). */
  command?: string;
}

export interface StartGuestsOptions extends ImageOptions {
  n: number;
  /** Bridge address with prefix, e.g. 10.99.0.1/24. */
  bridgeCidr: string;
  /** More bridge addresses: other subnets on the same bridge, routed by the namespace. */
  extraBridgeCidrs?: readonly string[];
  /** An existing namespace to put the bridge in (e.g. one running etcd); else a new one. */
  netns?: string;
  /** A network made with createRigNetwork (the caller destroys it). */
  network?: RigNetwork;
  /** 'run' (default): command, then power off. 'serve': command as a service + exec() queue. */
  mode?: GuestMode;
  /** Command file text for every guest (a `#!` line, else /bin/sh). Serve mode default: sleep. */
  command?: string;
  guests?: readonly GuestSpec[];
  /** Environment for every guest's command (names must be shell identifiers). */
  env?: Record<string, string>;
  /** MiB per guest (default 1024). */
  memMb?: number;
  /** vCPUs per guest (default 1; TCG runs one host thread per vCPU). */
  cpus?: number;
  /** Time for all guests to reach their command (default 120 s). */
  bootTimeoutMs?: number;
  /** The host takes part in barriers (`rig.barrier(name)`). */
  hostInBarriers?: boolean;
  /** Make the run directory under this directory (default: the system's temp directory). */
  runDirParent?: string;
  /** Keep the run directory at destroy (for debugging; its path is logged). */
  keepRunDir?: boolean;
  /** Progress lines (boot times); default: stderr. */
  log?: (line: string) => void;
}

export interface GuestInfo {
  index: number;
  name: string;
  /** address without prefix */
  ip: string;
  cidr: string;
  gateway: string | null;
  mac: string;
  tap: string;
  pid: number;
  /** host wall time from qemu start to the guest's command start, ms */
  bootMs: number;
  /** guest uptime at command start, s */
  uptimeSec: number;
  /** the guest's private part of the run dir (on the host) */
  dir: string;
}

export interface GuestResult {
  name: string;
  /** exit code of the command (run mode) or the service (serve mode); null if it never ended */
  rc: number | null;
  output: string;
  console: string;
  /** host wall time from qemu start to qemu exit, ms */
  totalMs: number;
}

export interface ExecResult {
  code: number;
  output: string;
  ms: number;
}

/**
 * Runs `script` through a serve-mode guest's command queue (GUESTDIR/queue/ID.sh -> ID.out + ID.rc)
 * and waits for its result. `exited()` says the guest is gone (then the wait ends with RigDown).
 */
async function queueExec(
  guestDir: string,
  name: string,
  id: string,
  script: string,
  timeoutMs: number,
  exited: () => boolean,
): Promise<ExecResult> {
  const q = join(guestDir, 'queue');
  const t0 = performance.now();
  writeFileSync(join(q, `${id}.tmp`), script);
  renameSync(join(q, `${id}.tmp`), join(q, `${id}.sh`));
  const rcFile = join(q, `${id}.rc`);
  for (;;) {
    if (existsSync(rcFile)) break;
    if (exited()) throw new VmError(VmErrorCode.RigDown, `${name} exited during exec ${id}`);
    if (performance.now() - t0 > timeoutMs) {
      throw new VmError(
        VmErrorCode.ExecTimeout,
        `${name}: no result for exec ${id} after ${timeoutMs} ms (${existsSync(join(q, `${id}.out`)) ? 'running' : 'not started: an earlier command is still running'}); output so far:\n${readOr(join(q, `${id}.out`))}\n--- service.log (tail)\n${readOr(join(guestDir, 'service.log')).slice(-2000)}\n--- console (tail)\n${readOr(join(guestDir, 'console.log')).slice(-1000)}`,
      );
    }
    await delay(50);
  }
  const code = Number(readOr(rcFile).trim());
  const output = readOr(join(q, `${id}.out`));
  rmSync(rcFile, { force: true });
  rmSync(join(q, `${id}.out`), { force: true });
  return { code, output, ms: performance.now() - t0 };
}

let foreignSeq = 0;

/**
 * exec() for a process that did not start the rig (e.g. a later `petrelctl lab` command): the
 * guest's directory and its qemu PID are all it needs. Commands from several processes queue in
 * the order their IDs sort (a timestamp first).
 */
export function guestExec(
  g: { name: string; dir: string; pid: number },
  script: string,
  timeoutMs = 120_000,
): Promise<ExecResult> {
  const alive = () => {
    try {
      process.kill(g.pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  if (!alive()) return Promise.reject(new VmError(VmErrorCode.RigDown, `${g.name} is not running (qemu pid ${g.pid})`));
  const id = `t${Date.now().toString().padStart(14, '0')}-${process.pid}-${++foreignSeq}`;
  return queueExec(g.dir, g.name, id, script, timeoutMs, () => !alive());
}

let rigCounter = 0;
const SHELL_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

function shQuote(v: string): string {
  return `'${v.replaceAll("'", `'\\''`)}'`;
}

function envFile(vars: Record<string, string>): string {
  const names = Object.keys(vars);
  for (const k of names) if (!SHELL_NAME.test(k)) throw new RigConfigError('env', k, 'not a shell variable name');
  return `${names.map((k) => `${k}=${shQuote(vars[k]!)}`).join('\n')}\nexport ${names.join(' ')}\n`;
}

function withShebang(text: string): string {
  return text.startsWith('#!') ? text : `#!/bin/sh\n${text}`;
}

function readOr(path: string, fallback = ''): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return fallback;
  }
}

interface Live {
  info: GuestInfo;
  proc: ChildProcess;
  exited: Promise<void>;
  isExited: () => boolean;
  startedAt: number;
  exitedAt?: number;
}

export class Rig {
  private seq = 0;
  private destroyed = false;
  private stopping = false;
  private heartbeat: NodeJS.Timeout | undefined;
  private readonly unregister: () => void;

  /** @internal use startGuests() */
  constructor(
    readonly id: number,
    readonly network: RigNetwork,
    private readonly ownNetwork: boolean,
    readonly runDir: string,
    readonly image: VmImage,
    readonly mode: GuestMode,
    private readonly live: Live[],
    private readonly keepRunDir: boolean,
    private readonly barrierCount: number,
    private readonly log: (line: string) => void,
  ) {
    this.unregister = atExit(() => this.destroySync());
    if (mode === GuestMode.Serve) {
      let n = 0;
      const beat = () => {
        try {
          writeFileSync(join(runDir, 'heartbeat'), `${++n}\n`);
        } catch {
          /* run dir gone */
        }
      };
      beat();
      this.heartbeat = setInterval(beat, 2000);
      this.heartbeat.unref();
    }
  }

  get netns(): string {
    return this.network.netns;
  }

  get guests(): GuestInfo[] {
    return this.live.map((l) => l.info);
  }

  /** Slowest guest's boot, ms. */
  get bootMs(): number {
    return Math.max(...this.live.map((l) => l.info.bootMs));
  }

  guest(which: number | string): GuestInfo {
    const g = this.live.find((l) => l.info.index === which || l.info.name === which);
    if (!g) throw new RigConfigError('guest', String(which), 'no such guest');
    return g.info;
  }

  private liveOf(which: number | string): Live {
    const info = this.guest(which);
    return this.live.find((l) => l.info === info)!;
  }

  /**
   * Runs `script` (sh) inside a serve-mode guest through its command queue; resolves with its
   * exit code and output (stdout + stderr). Commands to one guest run one at a time, in order.
   */
  async exec(which: number | string, script: string, timeoutMs = 120_000): Promise<ExecResult> {
    if (this.mode !== GuestMode.Serve) throw new VmError(VmErrorCode.RigDown, 'exec() needs mode serve');
    const l = this.liveOf(which);
    if (this.destroyed || this.stopping || l.isExited()) {
      throw new VmError(VmErrorCode.RigDown, `${l.info.name} is not running`);
    }
    const id = String(++this.seq).padStart(6, '0');
    return queueExec(l.info.dir, l.info.name, id, script, timeoutMs, l.isExited);
  }

  /** exec() on every guest in parallel; `script` may depend on the guest. */
  execAll(script: string | ((g: GuestInfo) => string), timeoutMs?: number): Promise<ExecResult[]> {
    return Promise.all(
      this.guests.map((g) => this.exec(g.index, typeof script === 'string' ? script : script(g), timeoutMs)),
    );
  }

  /** The host's side of `vm_barrier NAME` (needs hostInBarriers). */
  async barrier(name: string, timeoutMs = 120_000): Promise<void> {
    const dir = join(this.runDir, '.barrier', name);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'host'), '');
    const t0 = performance.now();
    while (readdirSync(dir).length < this.barrierCount) {
      if (performance.now() - t0 > timeoutMs) {
        throw new VmError(VmErrorCode.ExecTimeout, `barrier ${name}: ${readdirSync(dir).length}/${this.barrierCount}`);
      }
      await delay(50);
    }
  }

  private result(l: Live): GuestResult {
    const d = l.info.dir;
    const isRun = this.mode === GuestMode.Run;
    const rcText = readOr(join(d, isRun ? 'rc' : 'service.rc')).trim();
    return {
      name: l.info.name,
      rc: rcText === '' ? null : Number(rcText),
      output: readOr(join(d, isRun ? 'output.log' : 'service.log')),
      console: readOr(join(d, 'console.log')),
      totalMs: (l.exitedAt ?? performance.now()) - l.startedAt,
    };
  }

  private async waitExits(timeoutMs: number): Promise<boolean> {
    const all = Promise.all(this.live.map((l) => l.exited)).then(() => true);
    const t = delay(timeoutMs, false, { ref: false });
    return Promise.race([all, t]);
  }

  /**
   * Run mode: waits until every guest has powered off (kills them after `timeoutMs`, then
   * throws RunTimeout naming the guests still running) and returns each guest's result.
   */
  async wait(timeoutMs = 600_000): Promise<GuestResult[]> {
    if (!(await this.waitExits(timeoutMs))) {
      const stuck = this.live.filter((l) => !l.isExited()).map((l) => l.info.name);
      const results = this.live.map((l) => this.result(l));
      await this.destroy();
      throw new VmError(
        VmErrorCode.RunTimeout,
        `guests still running after ${timeoutMs} ms: ${stuck.join(', ')}\n${results.map((r) => `--- ${r.name}\n${r.output}\n${r.console.slice(-1500)}`).join('\n')}`,
      );
    }
    return this.live.map((l) => this.result(l));
  }

  /**
   * Serve mode: asks every guest to stop (its service gets SIGTERM, SIGKILL after 10 s), waits
   * for the guests to power off (kills them after `timeoutMs`) and returns the service results.
   */
  async stop(timeoutMs = 60_000): Promise<GuestResult[]> {
    this.stopping = true;
    for (const l of this.live) {
      try {
        writeFileSync(join(l.info.dir, 'stop'), '');
      } catch {
        /* run dir gone */
      }
    }
    if (!(await this.waitExits(timeoutMs))) {
      for (const l of this.live) if (!l.isExited()) l.proc.kill('SIGKILL');
      await this.waitExits(5000);
    }
    return this.live.map((l) => this.result(l));
  }

  /** Kills every qemu still running (by PID), deletes taps/netns made for it, removes the run dir. Idempotent. */
  async destroy(): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    if (this.heartbeat) clearInterval(this.heartbeat);
    for (const l of this.live) if (!l.isExited()) l.proc.kill('SIGKILL');
    await Promise.all(this.live.map((l) => l.exited));
    for (const l of this.live) await this.network.delTap(l.info.tap);
    if (this.ownNetwork) await this.network.destroy();
    if (this.keepRunDir) this.log(`petrel-vm: run dir kept: ${this.runDir}`);
    else rmSync(this.runDir, { recursive: true, force: true });
    this.unregister();
  }

  private destroySync(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    for (const l of this.live) {
      if (!l.isExited()) {
        try {
          process.kill(l.info.pid, 'SIGKILL');
        } catch {
          /* gone */
        }
      }
    }
    for (const l of this.live) hostRunSync('ip', ['-n', this.network.netns, 'link', 'del', l.info.tap]);
    if (!this.keepRunDir) rmSync(this.runDir, { recursive: true, force: true });
    // the network registered its own exit clean-up
  }
}

/** Boots the guests and resolves once every guest has reached its command (see Rig). */
export async function startGuests(o: StartGuestsOptions): Promise<Rig> {
  const log = o.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  if (!Number.isInteger(o.n) || o.n < 1 || o.n > 200) throw new RigConfigError('n', String(o.n), 'must be 1..200');
  const mode = o.mode ?? GuestMode.Run;
  if (mode !== GuestMode.Run && mode !== GuestMode.Serve)
    throw new RigConfigError('mode', String(mode), "'run' or 'serve'");
  const memMb = o.memMb ?? 1024;
  const cpus = o.cpus ?? 1;
  const bridge = parseIpv4Cidr(o.bridgeCidr, 'bridgeCidr');
  const extra = (o.extraBridgeCidrs ?? []).map((c) => parseIpv4Cidr(c, 'extraBridgeCidrs'));
  const rigId = ++rigCounter;

  // Addresses first: bad input fails before anything is created.
  const plan = Array.from({ length: o.n }, (_, i) => {
    const k = i + 1;
    const spec = o.guests?.[i] ?? {};
    const cidr = spec.cidr ?? guestAddress(bridge, k);
    const c = parseIpv4Cidr(cidr, `guests[${i}].cidr`);
    let gateway: string | null = formatIpv4(bridge.addr);
    if (spec.gateway !== undefined) gateway = spec.gateway;
    else {
      const same = [bridge, ...extra].find(
        (b) => b.prefixLen === c.prefixLen && (b.addr ^ c.addr) >>> (32 - c.prefixLen) === 0,
      );
      if (same) gateway = formatIpv4(same.addr);
    }
    if (gateway !== null) parseIpv4(gateway, `guests[${i}].gateway`);
    const command = spec.command ?? o.command;
    if (command === undefined && mode === GuestMode.Run)
      throw new RigConfigError('command', '', 'run mode needs a command');
    return {
      k,
      name: `node${k}`,
      cidr,
      ip: cidr.split('/')[0]!,
      prefix: c.prefixLen,
      gateway,
      command,
      env: spec.env ?? {},
    };
  });
  for (const p of plan) envFile(p.env);
  envFile(o.env ?? {});

  const image = await ensureImage(o);
  if (image.built) log(`petrel-vm: built kernel/initramfs for ${image.kver} in ${(image.buildMs / 1000).toFixed(1)} s`);

  const runDir = mkdtempSync(join(o.runDirParent ?? tmpdir(), 'petrel-vm-run-'));
  if (runDir.includes(',')) throw new RigConfigError('TMPDIR', runDir, 'qemu paths cannot contain commas');
  let network: RigNetwork | undefined = o.network;
  const ownNetwork = network === undefined;
  const live: Live[] = [];
  const killAll = () => {
    for (const l of live) if (!l.isExited()) l.proc.kill('SIGKILL');
  };
  const unregisterEarly = atExit(() => {
    killAll();
    rmSync(runDir, { recursive: true, force: true });
  });
  try {
    network ??= await createRigNetwork({
      ...(o.netns !== undefined ? { netns: o.netns } : {}),
      bridgeCidr: o.bridgeCidr,
      ...(o.extraBridgeCidrs ? { extraBridgeCidrs: o.extraBridgeCidrs } : {}),
    });
    const barrierCount = o.n + (o.hostInBarriers ? 1 : 0);
    writeFileSync(join(runDir, 'lib.sh'), LIB);
    writeFileSync(
      join(runDir, 'hosts'),
      ['127.0.0.1 localhost', `${formatIpv4(bridge.addr)} vm-host`, ...plan.map((p) => `${p.ip} ${p.name}`), ''].join(
        '\n',
      ),
    );
    const nodeIps = plan.map((p) => p.ip).join(' ');
    for (const p of plan) {
      const dir = join(runDir, p.name);
      mkdirSync(join(dir, 'queue'), { recursive: true });
      writeFileSync(
        join(dir, 'env'),
        envFile({
          ...(o.env ?? {}),
          ...p.env,
          PETREL_VM_NODE: p.name,
          PETREL_VM_INDEX: String(p.k),
          PETREL_VM_COUNT: String(o.n),
          PETREL_VM_IP: p.ip,
          PETREL_VM_CIDR: p.cidr,
          PETREL_VM_PREFIX: String(p.prefix),
          PETREL_VM_GATEWAY: p.gateway ?? '',
          PETREL_VM_BRIDGE_IP: formatIpv4(bridge.addr),
          PETREL_VM_NODE_IPS: nodeIps,
          PETREL_VM_BARRIER_COUNT: String(barrierCount),
          PETREL_VM_DIR: '/vm',
        }),
      );
      const cmd =
        p.command ??
        // serve mode without a service: idle until stopped
        '#!/.petrel-vm/busybox sh\nexec /.petrel-vm/busybox sleep 2000000000\n';
      writeFileSync(join(dir, 'cmd'), withShebang(cmd));
      chmodSync(join(dir, 'cmd'), 0o755);
    }
    if (mode === GuestMode.Serve) writeFileSync(join(runDir, 'heartbeat'), '0\n');

    const t0 = performance.now();
    for (const p of plan) {
      const tap = `pvm${rigId}t${p.k}`.slice(0, 15);
      await network.addTap(tap);
      const mac = guestMac(rigId, p.k);
      const dir = join(runDir, p.name);
      const append = `console=ttyS0 quiet panic=-1 mitigations=off petrel.node=${p.name} petrel.mode=${mode}`;
      const args = [
        `--net=${netnsPath(network.netns)}`,
        'qemu-system-x86_64',
        ...['-accel', 'tcg', '-m', String(memMb), '-smp', String(cpus)],
        ...['-nodefaults', '-no-user-config', '-display', 'none', '-no-reboot'],
        ...['-kernel', image.kernel, '-initrd', image.initrd, '-append', append],
        ...['-virtfs', 'local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap'],
        ...['-virtfs', `local,path=${runDir},mount_tag=petrelvm,security_model=none,multidevs=remap`],
        ...['-netdev', `tap,id=n0,ifname=${tap},script=no,downscript=no`],
        ...['-device', `virtio-net-pci,netdev=n0,mac=${mac}`],
        ...['-serial', `file:${join(dir, 'console.log')}`],
      ];
      const logFd = openSync(join(dir, 'qemu.log'), 'w');
      // nsenter without --fork execs qemu: the PID is qemu's
      const proc = spawn('nsenter', args, { stdio: ['ignore', logFd, logFd] });
      closeSync(logFd);
      let done = false;
      const l: Live = {
        info: {
          index: p.k,
          name: p.name,
          ip: p.ip,
          cidr: p.cidr,
          gateway: p.gateway,
          mac,
          tap,
          pid: proc.pid ?? -1,
          bootMs: 0,
          uptimeSec: 0,
          dir,
        },
        proc,
        exited: new Promise<void>((resolve) => {
          proc.on('exit', () => {
            done = true;
            l.exitedAt = performance.now();
            resolve();
          });
          proc.on('error', () => {
            done = true;
            resolve();
          });
        }),
        isExited: () => done,
        startedAt: performance.now(),
      };
      live.push(l);
    }

    // Ready = the guest wrote /vm/NODE/booted just before starting its command.
    const bootTimeoutMs = o.bootTimeoutMs ?? 120_000;
    const pending = new Set(live);
    while (pending.size > 0) {
      for (const l of [...pending]) {
        const booted = readOr(join(l.info.dir, 'booted')).trim();
        if (booted !== '') {
          l.info.bootMs = performance.now() - l.startedAt;
          l.info.uptimeSec = Number(booted);
          pending.delete(l);
        } else if (l.isExited()) {
          throw new VmError(
            VmErrorCode.QemuFailed,
            `${l.info.name}: qemu exited before the guest was ready\n${readOr(join(l.info.dir, 'qemu.log'))}${readOr(join(l.info.dir, 'console.log')).slice(-2000)}`,
          );
        }
      }
      if (pending.size === 0) break;
      if (performance.now() - t0 > bootTimeoutMs) {
        const names = [...pending].map((l) => l.info.name);
        const tails = [...pending].map(
          (l) => `--- ${l.info.name}\n${readOr(join(l.info.dir, 'console.log')).slice(-1500)}`,
        );
        throw new VmError(
          VmErrorCode.BootTimeout,
          `not ready after ${bootTimeoutMs} ms: ${names.join(', ')}\n${tails.join('\n')}`,
        );
      }
      await delay(50);
    }
    const all = ((performance.now() - t0) / 1000).toFixed(1);
    log(
      `petrel-vm: ${o.n} guest(s) ready in ${all} s (${live
        .map((l) => `${l.info.name} ${(l.info.bootMs / 1000).toFixed(1)} s, uptime ${l.info.uptimeSec.toFixed(1)} s`)
        .join('; ')}), netns ${network.netns}`,
    );
    const rig = new Rig(
      rigId,
      network,
      ownNetwork,
      runDir,
      image,
      mode,
      live,
      o.keepRunDir ?? false,
      barrierCount,
      log,
    );
    unregisterEarly();
    return rig;
  } catch (err) {
    killAll();
    await Promise.all(live.map((l) => l.exited));
    if (network) {
      for (const l of live) await network.delTap(l.info.tap);
      if (ownNetwork) await network.destroy();
    }
    if (!o.keepRunDir) rmSync(runDir, { recursive: true, force: true });
    unregisterEarly();
    throw err;
  }
}

/** startGuests in run mode, wait, destroy: the whole batch in one call. */
export async function runGuests(
  o: StartGuestsOptions & { timeoutMs?: number },
): Promise<{ results: GuestResult[]; bootMs: number }> {
  const rig = await startGuests({ ...o, mode: GuestMode.Run });
  try {
    const results = await rig.wait(o.timeoutMs);
    return { results, bootMs: rig.bootMs };
  } finally {
    await rig.destroy();
  }
}
