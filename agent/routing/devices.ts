/**
 * Tunnel devices and node-wide forwarding (Felix's ipip/vxlan managers, calico.md §3.2, §3.8):
 *   tunl0          IPIP fallback device: created if missing, MTU, up, the node's IPIP tunnel
 *                  address as /32, rp_filter loose.
 *   petrel.vxlan   VXLAN VNI 4096, UDP 4789, learning off, MAC from the node record, local VTEP =
 *                  the node's address, bound to the uplink; MTU, up, the VXLAN tunnel address /32,
 *                  rp_filter loose. petrel.vxlan6 likewise over IPv6 (/128).
 *   forwarding     net.ipv4.ip_forward=1, net.ipv6.conf.all.forwarding=1 (Linux forwards IPv6
 *                  only node-wide).
 * rp_filter: the kernel applies max(conf.all, conf.<dev>), so 0 on the device would still leave the
 * host's `all` value (often 1, strict) in force; 2 (loose) is what actually makes decapsulated
 * pod traffic pass on asymmetric paths (CrossSubnet), whatever `all` is.
 * A device no pool wants any more is removed (petrel.vxlan*) or, for tunl0 — the ipip module's
 * fallback device cannot be deleted — stripped of its addresses and set down, as Felix does.
 * A VXLAN device whose fixed parameters (VNI, port, local, uplink, learning) differ is recreated.
 *
 * IPIP needs the kernel's `ipip` support; `ipipSupported()` probes it in a scratch namespace so
 * tests (and the qemu-guest harness) can tell.
 */
import type { Logger } from '../common/log.js';
import { KernelError } from './kernel.js';
import { classifyError, type ExecResult, execIn } from './kernel-iproute2.js';
import { Devices, type TunnelDeviceSpec } from './types.js';

export interface DeviceResult {
  device: string;
  ok: boolean;
  action: 'created' | 'updated' | 'unchanged' | 'removed' | 'failed';
  error?: KernelError;
}

interface JsonLink {
  ifname: string;
  mtu?: number;
  address?: string;
  flags?: string[];
  linkinfo?: { info_kind?: string; info_data?: Record<string, unknown> };
}

interface JsonAddr {
  addr_info?: { local?: string; prefixlen?: number; scope?: string; family?: string }[];
}

export class TunnelDevices {
  private readonly log: Logger;
  constructor(private readonly opts: { log: Logger; netnsPath?: string }) {
    this.log = opts.log.child({ component: 'devices' });
  }

  private async ip(...args: string[]): Promise<ExecResult> {
    return execIn(this.opts.netnsPath, 'ip', args);
  }

  private async ipOk(op: 'add' | 'replace' | 'delete', ...args: string[]): Promise<string> {
    const r = await this.ip(...args);
    if (r.code !== 0) {
      const msg = `ip ${args.join(' ')}: ${r.stderr.trim()}`;
      throw new KernelError(op, /Unknown device type/.test(r.stderr) ? 'other' : classifyError(r.stderr), msg);
    }
    return r.stdout;
  }

  private async link(name: string): Promise<JsonLink | null> {
    const r = await this.ip('-d', '-json', 'link', 'show', 'dev', name);
    if (r.code !== 0) return null;
    return (JSON.parse(r.stdout || '[]') as JsonLink[])[0] ?? null;
  }

  /** Writes sysctls (slash form, so a device name with dots stays one path element). */
  async sysctl(entries: Record<string, string>): Promise<void> {
    const args = ['-q', '-w', ...Object.entries(entries).map(([k, v]) => `${k}=${v}`)];
    const r = await execIn(this.opts.netnsPath, 'sysctl', args);
    if (r.code !== 0) throw new KernelError('replace', 'other', `sysctl ${args.join(' ')}: ${r.stderr.trim()}`);
  }

  /** Node-wide forwarding, as Felix's IPForwarding=Enabled. */
  async enableForwarding(): Promise<void> {
    await this.sysctl({ 'net/ipv4/ip_forward': '1', 'net/ipv6/conf/all/forwarding': '1' });
  }

  /** Makes Petrel's tunnel devices match `specs`; one result per device touched. */
  async apply(specs: readonly TunnelDeviceSpec[]): Promise<DeviceResult[]> {
    const out: DeviceResult[] = [];
    const wanted = new Set(specs.map((s) => s.name));
    for (const s of specs) {
      try {
        out.push(await this.ensure(s));
      } catch (e) {
        const error = e instanceof KernelError ? e : new KernelError('add', 'other', String(e), { cause: e });
        this.log.warn({ device: s.name, err: error.message }, 'tunnel device set-up failed');
        out.push({ device: s.name, ok: false, action: 'failed', error });
      }
    }
    for (const name of [Devices.vxlan, Devices.vxlan6, Devices.ipip]) {
      if (wanted.has(name)) continue;
      const l = await this.link(name);
      if (!l) continue;
      if (name === Devices.ipip) {
        await this.ip('addr', 'flush', 'dev', name);
        await this.ip('link', 'set', name, 'down');
      } else {
        await this.ip('link', 'del', name);
      }
      out.push({ device: name, ok: true, action: 'removed' });
    }
    return out;
  }

  private async ensure(s: TunnelDeviceSpec): Promise<DeviceResult> {
    let l = await this.link(s.name);
    let action: DeviceResult['action'] = 'unchanged';
    if (l && s.kind === 'vxlan' && !vxlanMatches(l, s)) {
      this.log.info({ device: s.name }, 'vxlan parameters differ, recreating');
      await this.ipOk('delete', 'link', 'del', s.name);
      l = null;
    }
    if (!l) {
      if (s.kind === 'ipip') await this.ipOk('add', 'link', 'add', 'name', s.name, 'type', 'ipip');
      else {
        if (!s.local || !s.uplink || s.vni === undefined || s.port === undefined) {
          throw new KernelError('add', 'other', `vxlan device ${s.name} needs local, uplink, vni and port`);
        }
        await this.ipOk(
          'add',
          'link',
          'add',
          s.name,
          ...(s.mac ? ['address', s.mac] : []),
          'type',
          'vxlan',
          'id',
          String(s.vni),
          'dstport',
          String(s.port),
          'local',
          s.local,
          'dev',
          s.uplink,
          'nolearning',
        );
      }
      action = 'created';
      l = await this.link(s.name);
    }
    const up = l?.flags?.includes('UP') ?? false;
    const macOk = !s.mac || l?.address?.toLowerCase() === s.mac.toLowerCase();
    if (!up || l?.mtu !== s.mtu || !macOk) {
      await this.ipOk(
        'replace',
        'link',
        'set',
        s.name,
        'mtu',
        String(s.mtu),
        ...(s.mac && !macOk ? ['address', s.mac] : []),
        'up',
      );
      if (action === 'unchanged') action = 'updated';
    }
    if (s.address && (await this.ensureAddress(s.name, s.address)) && action === 'unchanged') action = 'updated';
    if (s.name !== Devices.vxlan6) await this.sysctl({ [`net/ipv4/conf/${s.name}/rp_filter`]: '2' });
    if (action !== 'unchanged') this.log.info({ device: s.name, action, mtu: s.mtu }, 'tunnel device');
    return { device: s.name, ok: true, action };
  }

  /** Exactly `addr` (/32 or /128) among the device's global addresses; true when something changed. */
  private async ensureAddress(dev: string, addr: string): Promise<boolean> {
    const v6 = addr.includes(':');
    const len = v6 ? 128 : 32;
    const r = await this.ip('-json', 'addr', 'show', 'dev', dev);
    const infos = ((JSON.parse(r.stdout || '[]') as JsonAddr[])[0]?.addr_info ?? []).filter(
      (a) => a.scope === 'global',
    );
    let changed = false;
    let have = false;
    for (const a of infos) {
      if (a.local === addr && a.prefixlen === len) have = true;
      else if (a.local) {
        await this.ip('addr', 'del', `${a.local}/${a.prefixlen}`, 'dev', dev);
        changed = true;
      }
    }
    if (!have) {
      await this.ipOk('add', 'addr', 'replace', `${addr}/${len}`, 'dev', dev, ...(v6 ? ['nodad'] : []));
      changed = true;
    }
    return changed;
  }
}

function vxlanMatches(l: JsonLink, s: TunnelDeviceSpec): boolean {
  if (l.linkinfo?.info_kind !== 'vxlan') return false;
  const d = l.linkinfo.info_data ?? {};
  const local = (d.local ?? d.local6) as string | undefined;
  return d.id === s.vni && d.port === s.port && local === s.local && d.link === s.uplink && d.learning === false;
}

/** Whether this kernel can make IPIP devices (probed once in a scratch namespace). */
export async function ipipSupported(): Promise<boolean> {
  const name = `petrel-ipip-probe-${process.pid}`;
  const add = await execIn(undefined, 'ip', ['netns', 'add', name]);
  if (add.code !== 0) return false;
  try {
    const r = await execIn(undefined, 'ip', ['-n', name, 'link', 'add', 'name', 'ptest0', 'type', 'ipip']);
    return r.code === 0 || /File exists/.test(r.stderr);
  } finally {
    await execIn(undefined, 'ip', ['netns', 'del', name]);
  }
}
