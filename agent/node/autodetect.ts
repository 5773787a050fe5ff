/**
 * Node address autodetection (Calico's IP_AUTODETECTION_METHOD). PURE: selection over a list of
 * interfaces and their addresses (what `ip -json addr` shows) plus, for can-reach, the source
 * address the kernel chose; the edge that runs `ip` is in autodetect-edge.ts.
 *
 *   first-found            first global address of the first interface not excluded by default
 *                          (lo, docker*, veth*, petr*, petrel*, cali*, tunl*, vxlan*, kube-ipvs*, cni*, flannel*, virbr*, br-*)
 *   can-reach=DEST         the source address of the kernel's route to DEST
 *   interface=REGEX        first address of the first interface whose whole name matches
 *   skip-interface=REGEX   first-found, also skipping interfaces whose name matches
 *   cidr=CIDR[,CIDR]       first address inside one of the CIDRs
 *   kubernetes-internal-ip the InternalIP of this node's Kubernetes Node object (of the family),
 *                          with the prefix length of the interface holding it (the edge reads the
 *                          Node; the agent must have a Kubernetes API connection)
 */
import { parseCidr, parseIp } from '../../ipam-etcd/index.js';

export interface IfaceAddr {
  /** Address without length. */
  address: string;
  prefixLen: number;
  family: 4 | 6;
  scope: string;
}

export interface Iface {
  name: string;
  /** Administratively up (IFF_UP). */
  up: boolean;
  addrs: IfaceAddr[];
}

export type DetectMethod =
  | { kind: 'first-found' }
  | { kind: 'can-reach'; dest: string }
  | { kind: 'interface'; regex: string }
  | { kind: 'skip-interface'; regex: string }
  | { kind: 'cidr'; cidrs: string[] }
  | { kind: 'kubernetes-internal-ip' };

/** Interfaces first-found never picks (Calico's default exclusions plus Petrel's own devices). */
export const DEFAULT_SKIP = [
  /^lo$/,
  /^docker/,
  /^veth/,
  /^petr/,
  /^cali/,
  /^tunl/,
  /^vxlan/,
  /^kube-ipvs/,
  /^cni/,
  /^flannel/,
  /^virbr/,
  /^br-/,
  /^nodelocaldns/,
];

/** Parses `first-found`, `can-reach=DEST`, `interface=REGEX`, `skip-interface=REGEX`, `cidr=A,B`. */
export function parseDetectMethod(s: string): DetectMethod {
  const bad = (why: string) => new Error(`--ip-autodetection-method ${JSON.stringify(s)}: ${why}`);
  if (s === 'first-found') return { kind: 'first-found' };
  if (s === 'kubernetes-internal-ip') return { kind: 'kubernetes-internal-ip' };
  const eq = s.indexOf('=');
  if (eq < 0)
    throw bad(
      'expected first-found, can-reach=DEST, interface=REGEX, skip-interface=REGEX, cidr=CIDR or kubernetes-internal-ip',
    );
  const kind = s.slice(0, eq);
  const arg = s.slice(eq + 1);
  if (arg === '') throw bad('missing value after =');
  const regex = (r: string) => {
    try {
      new RegExp(r);
    } catch {
      throw bad(`${JSON.stringify(r)} is not a regular expression`);
    }
    return r;
  };
  switch (kind) {
    case 'can-reach':
      // Calico accepts an IP or a host name; we need no resolver in the core: IPs only.
      try {
        parseIp(arg);
      } catch {
        throw bad(`${JSON.stringify(arg)} is not an IP address`);
      }
      return { kind: 'can-reach', dest: arg };
    case 'interface':
      return { kind: 'interface', regex: regex(arg) };
    case 'skip-interface':
      return { kind: 'skip-interface', regex: regex(arg) };
    case 'cidr': {
      const cidrs = arg.split(',').map((c) => c.trim());
      for (const c of cidrs) {
        try {
          parseCidr(c, false);
        } catch {
          throw bad(`${JSON.stringify(c)} is not a CIDR`);
        }
      }
      return { kind: 'cidr', cidrs };
    }
    default:
      throw bad(`unknown method ${JSON.stringify(kind)}`);
  }
}

function usable(a: IfaceAddr, family: 4 | 6): boolean {
  if (a.family !== family) return false;
  // Link-local and host-scope addresses are no node address.
  if (a.scope !== 'global') return false;
  return true;
}

function inCidr(addr: string, cidr: string): boolean {
  const c = parseCidr(cidr, false);
  const ip = parseIp(addr);
  if (ip.family !== c.family) return false;
  const bits = ip.family === 4 ? 32 : 128;
  const shift = BigInt(bits - c.len);
  return ip.addr >> shift === c.addr >> shift;
}

/** The chosen address as "ADDR/LEN" and its interface, or an error message. */
export type Detected = { ok: true; addrLen: string; iface: string } | { ok: false; error: string };

/**
 * Picks this node's address of `family` by `method`. `routeSrc` is the kernel's source address
 * toward the can-reach destination (the edge asks `ip route get`); `internalIps` the InternalIP
 * addresses of the node's Kubernetes Node object (kubernetes-internal-ip); each is ignored by the
 * other methods.
 */
export function detectAddress(
  ifaces: readonly Iface[],
  family: 4 | 6,
  method: DetectMethod,
  routeSrc?: string,
  internalIps?: readonly string[],
): Detected {
  const pick = (pred: (i: Iface) => boolean, addrPred: (a: IfaceAddr) => boolean = () => true): Detected | null => {
    for (const i of ifaces) {
      if (!i.up || !pred(i)) continue;
      const a = i.addrs.find((x) => usable(x, family) && addrPred(x));
      if (a) return { ok: true, addrLen: `${a.address}/${a.prefixLen}`, iface: i.name };
    }
    return null;
  };
  const notDefault = (i: Iface) => !DEFAULT_SKIP.some((r) => r.test(i.name));
  const v = `IPv${family}`;
  switch (method.kind) {
    case 'first-found':
      return pick(notDefault) ?? { ok: false, error: `no ${v} address found on any interface (first-found)` };
    case 'skip-interface': {
      const re = new RegExp(`^(?:${method.regex})$`);
      return (
        pick((i) => notDefault(i) && !re.test(i.name)) ?? {
          ok: false,
          error: `no ${v} address found outside interfaces matching ${method.regex}`,
        }
      );
    }
    case 'interface': {
      const re = new RegExp(`^(?:${method.regex})$`);
      return (
        pick((i) => re.test(i.name)) ?? { ok: false, error: `no ${v} address on an interface matching ${method.regex}` }
      );
    }
    case 'cidr':
      return (
        pick(
          () => true,
          (a) => method.cidrs.some((c) => inCidr(a.address, c)),
        ) ?? { ok: false, error: `no ${v} address inside ${method.cidrs.join(',')}` }
      );
    case 'can-reach': {
      if (routeSrc === undefined) return { ok: false, error: `no route to ${method.dest}` };
      for (const i of ifaces) {
        const a = i.addrs.find((x) => x.family === family && x.address === routeSrc);
        if (a) return { ok: true, addrLen: `${a.address}/${a.prefixLen}`, iface: i.name };
      }
      return { ok: false, error: `the source address ${routeSrc} toward ${method.dest} is on no interface` };
    }
    case 'kubernetes-internal-ip': {
      const want = (internalIps ?? []).filter((ip) => {
        try {
          return parseIp(ip).family === family;
        } catch {
          return false;
        }
      });
      if (want.length === 0) return { ok: false, error: `the Kubernetes Node has no ${v} InternalIP` };
      // Exact address match: any scope, any interface (the Node says which address is the node's).
      for (const ip of want)
        for (const i of ifaces) {
          const a = i.addrs.find((x) => x.family === family && x.address === ip);
          if (a) return { ok: true, addrLen: `${a.address}/${a.prefixLen}`, iface: i.name };
        }
      return { ok: false, error: `the Node's InternalIP ${want.join(',')} is on no interface of this host` };
    }
  }
}

/** The InternalIP addresses of a Kubernetes Node's status.addresses. */
export function internalIpsOf(node: { status?: { addresses?: { type: string; address: string }[] } }): string[] {
  return (node.status?.addresses ?? []).filter((a) => a.type === 'InternalIP').map((a) => a.address);
}

/** Parses `ip -json addr` output into Iface[]. */
export function parseIpAddrJson(text: string): Iface[] {
  const arr = JSON.parse(text) as {
    ifname: string;
    flags?: string[];
    addr_info?: { family: string; local: string; prefixlen: number; scope?: string }[];
  }[];
  return arr.map((l) => ({
    name: l.ifname,
    up: (l.flags ?? []).includes('UP'),
    addrs: (l.addr_info ?? [])
      .filter((a) => a.family === 'inet' || a.family === 'inet6')
      .map((a) => ({
        address: a.local,
        prefixLen: a.prefixlen,
        family: a.family === 'inet' ? (4 as const) : (6 as const),
        scope: a.scope ?? 'global',
      })),
  }));
}

/** The interface holding an address (for the uplink), or undefined. */
export function ifaceOf(ifaces: readonly Iface[], addr: string): string | undefined {
  return ifaces.find((i) => i.addrs.some((a) => a.address === addr))?.name;
}
