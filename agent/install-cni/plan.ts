/**
 * PURE: what `petrel-install-cni` (the DaemonSet's init container, Calico's install-cni) does,
 * decided from its settings and what it found on the host; main.ts performs it.
 *
 *   CNI_NET_DIR              /host/etc/cni/net.d     where the conflist goes
 *   CNI_BIN_DIR              /host/opt/cni/bin       where the plugin executables go
 *   CNI_CONF_NAME            10-petrel.conflist
 *   CNI_NETWORK_CONFIG       the conflist template (or CNI_NETWORK_CONFIG_FILE: a path to it)
 *   KUBERNETES_NODE_NAME     replaces __KUBERNETES_NODE_NAME__
 *   CNI_MTU                  replaces __CNI_MTU__ (0 = the agent's planned MTU; default 0)
 *   PETREL_AGENT_SOCKET      replaces __AGENT_SOCKET__ (default /var/run/petrel/agent.sock)
 *   PETREL_LOG_LEVEL         replaces __LOG_LEVEL__ (default info)
 *   PETREL_CNI_SOURCE_DIR    /opt/petrel/cni-bin     the executables shipped in the image
 *   SKIP_CNI_BINARIES        comma-separated names not to copy
 *   UPDATE_CNI_BINARIES      true: replace a different existing executable; false: keep it
 *   PETREL_INSTALL_FORCE     true: replace a conflist of that name that is not Petrel's
 *
 * Complicating factors:
 *  - kubelet/containerd read the conflist directory at any time: files are written to a temp name
 *    in the same directory and renamed into place (main.ts), never written in place.
 *  - A conflist of our name that holds no `petrel` plugin belongs to someone else: refused unless
 *    forced, with a message that says which file and why.
 *  - The runtime uses the first conflist in lexical order: another one sorting before ours means
 *    pods would not get Petrel; reported as a warning (the operator may be migrating).
 *  - The template must give valid JSON after substitution, a conflist with a `petrel` plugin.
 */

export interface InstallSettings {
  netDir: string;
  binDir: string;
  confName: string;
  template: string;
  nodeName: string;
  mtu: number;
  agentSocket: string;
  logLevel: string;
  sourceDir: string;
  skipBinaries: string[];
  updateBinaries: boolean;
  force: boolean;
}

export class InstallError extends Error {
  override readonly name = 'InstallError';
}

export const DEFAULTS = {
  netDir: '/host/etc/cni/net.d',
  binDir: '/host/opt/cni/bin',
  confName: '10-petrel.conflist',
  agentSocket: '/var/run/petrel/agent.sock',
  logLevel: 'info',
  sourceDir: '/opt/petrel/cni-bin',
} as const;

/** The executables install-cni copies when present in the source dir. */
export const PLUGINS = ['petrel', 'petrel-ipam'] as const;

const truthy = (v: string | undefined, dflt: boolean, name: string): boolean => {
  if (v === undefined || v.trim() === '') return dflt;
  const s = v.trim().toLowerCase();
  if (s === 'true' || s === '1' || s === 'yes') return true;
  if (s === 'false' || s === '0' || s === 'no') return false;
  throw new InstallError(`${name}=${JSON.stringify(v)}: must be true or false`);
};

/** Settings from the environment; `readFile` reads CNI_NETWORK_CONFIG_FILE. */
export function parseSettings(
  env: Readonly<Record<string, string | undefined>>,
  readFile: (path: string) => string,
): InstallSettings {
  const get = (k: string) => {
    const v = env[k];
    return v === undefined || v.trim() === '' ? undefined : v.trim();
  };
  let template = env.CNI_NETWORK_CONFIG;
  const file = get('CNI_NETWORK_CONFIG_FILE');
  if ((template === undefined || template.trim() === '') && file) {
    try {
      template = readFile(file);
    } catch (err) {
      throw new InstallError(`CNI_NETWORK_CONFIG_FILE ${file}: ${(err as Error).message}`);
    }
  }
  if (template === undefined || template.trim() === '')
    throw new InstallError('CNI_NETWORK_CONFIG (or CNI_NETWORK_CONFIG_FILE) is required: the conflist template');
  const nodeName = get('KUBERNETES_NODE_NAME') ?? '';
  if (template.includes('__KUBERNETES_NODE_NAME__') && !nodeName)
    throw new InstallError('KUBERNETES_NODE_NAME is required: the template uses __KUBERNETES_NODE_NAME__');
  const mtuText = get('CNI_MTU') ?? '0';
  const mtu = Number(mtuText);
  if (!/^\d+$/.test(mtuText) || (mtu !== 0 && (mtu < 68 || mtu > 65535)))
    throw new InstallError(`CNI_MTU=${JSON.stringify(mtuText)}: must be 0 (the agent's) or 68..65535`);
  const confName = get('CNI_CONF_NAME') ?? DEFAULTS.confName;
  if (!/^[A-Za-z0-9._-]+\.conflist$/.test(confName))
    throw new InstallError(`CNI_CONF_NAME=${JSON.stringify(confName)}: must be a file name ending in .conflist`);
  const abs = (k: string, d: string) => {
    const v = get(k) ?? d;
    if (!v.startsWith('/')) throw new InstallError(`${k}=${JSON.stringify(v)}: must be an absolute path`);
    return v;
  };
  return {
    netDir: abs('CNI_NET_DIR', DEFAULTS.netDir),
    binDir: abs('CNI_BIN_DIR', DEFAULTS.binDir),
    confName,
    template,
    nodeName,
    mtu,
    agentSocket: abs('PETREL_AGENT_SOCKET', DEFAULTS.agentSocket),
    logLevel: get('PETREL_LOG_LEVEL') ?? DEFAULTS.logLevel,
    sourceDir: abs('PETREL_CNI_SOURCE_DIR', DEFAULTS.sourceDir),
    skipBinaries: (get('SKIP_CNI_BINARIES') ?? '')
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean),
    updateBinaries: truthy(env.UPDATE_CNI_BINARIES, true, 'UPDATE_CNI_BINARIES'),
    force: truthy(env.PETREL_INSTALL_FORCE, false, 'PETREL_INSTALL_FORCE'),
  };
}

interface Conflist {
  cniVersion?: unknown;
  name?: unknown;
  plugins?: unknown;
}

function pluginsOf(v: unknown): Record<string, unknown>[] | undefined {
  const c = v as Conflist;
  if (!c || typeof c !== 'object' || !Array.isArray(c.plugins)) return undefined;
  return c.plugins.filter((p): p is Record<string, unknown> => !!p && typeof p === 'object');
}

/**
 * Renders the template (string substitution, as Calico's install does) and checks the result:
 * valid JSON, a conflist with a name, a cniVersion and a `petrel` plugin. Returns the text to write
 * (pretty-printed, newline-terminated).
 */
export function renderConflist(
  s: Pick<InstallSettings, 'template' | 'nodeName' | 'mtu' | 'agentSocket' | 'logLevel'>,
): {
  text: string;
  petrel: Record<string, unknown>;
  conflist: { cniVersion: string; name: string; plugins: Record<string, unknown>[] };
} {
  const text = s.template
    .replaceAll('__KUBERNETES_NODE_NAME__', s.nodeName)
    .replaceAll('__CNI_MTU__', String(s.mtu))
    .replaceAll('__AGENT_SOCKET__', s.agentSocket)
    .replaceAll('__LOG_LEVEL__', s.logLevel);
  const left = /__[A-Z][A-Z0-9_]*__/.exec(text);
  if (left) throw new InstallError(`CNI_NETWORK_CONFIG: unknown placeholder ${left[0]}`);
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (err) {
    throw new InstallError(`CNI_NETWORK_CONFIG is not valid JSON after substitution: ${(err as Error).message}`);
  }
  const c = v as Conflist;
  const plugins = pluginsOf(v);
  if (!plugins || plugins.length === 0)
    throw new InstallError('CNI_NETWORK_CONFIG: not a conflist (no "plugins" list)');
  if (typeof c.name !== 'string' || !c.name) throw new InstallError('CNI_NETWORK_CONFIG: the conflist has no "name"');
  if (typeof c.cniVersion !== 'string') throw new InstallError('CNI_NETWORK_CONFIG: the conflist has no "cniVersion"');
  const petrel = plugins.find((p) => p.type === 'petrel');
  if (!petrel) throw new InstallError('CNI_NETWORK_CONFIG: the conflist has no plugin of type "petrel"');
  return {
    text: `${JSON.stringify(v, null, 2)}\n`,
    petrel,
    conflist: { cniVersion: c.cniVersion, name: c.name, plugins },
  };
}

/** Is an existing conflist Petrel's (it has a `petrel` plugin)? Unparsable = not ours. */
export function isPetrelConflist(text: string): boolean {
  try {
    return (pluginsOf(JSON.parse(text)) ?? []).some((p) => p.type === 'petrel');
  } catch {
    return false;
  }
}

export type ConfAction = 'write' | 'unchanged';

/** What to do with our conflist, given what the directory holds (file name → content). */
export function planConflist(
  s: Pick<InstallSettings, 'confName' | 'force' | 'netDir'>,
  rendered: string,
  existing: ReadonlyMap<string, string>,
): { action: ConfAction; warnings: string[] } {
  const warnings: string[] = [];
  const mine = existing.get(s.confName);
  if (mine !== undefined && mine !== rendered && !isPetrelConflist(mine) && !s.force) {
    throw new InstallError(
      `${s.netDir}/${s.confName} exists and is not Petrel's (no "petrel" plugin): refusing to overwrite it; remove it or set PETREL_INSTALL_FORCE=true`,
    );
  }
  for (const name of [...existing.keys()].sort()) {
    if (name >= s.confName) break;
    if (/\.(conflist|conf|json)$/.test(name))
      warnings.push(
        `${s.netDir}/${name} sorts before ${s.confName}: the container runtime uses the first network config, so pods would not get Petrel while it is there`,
      );
  }
  return { action: mine === rendered ? 'unchanged' : 'write', warnings };
}

export type BinaryAction = 'copy' | 'unchanged' | 'kept' | 'skipped';

/** Per executable: copy, leave (same content), keep (different, but updates off) or skip. */
export function planBinary(
  name: string,
  s: Pick<InstallSettings, 'skipBinaries' | 'updateBinaries'>,
  sourceHash: string,
  destHash: string | undefined,
): BinaryAction {
  if (s.skipBinaries.includes(name)) return 'skipped';
  if (destHash === undefined) return 'copy';
  if (destHash === sourceHash) return 'unchanged';
  return s.updateBinaries ? 'copy' : 'kept';
}
