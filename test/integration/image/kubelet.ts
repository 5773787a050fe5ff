/**
 * The part of kubelet's job the e2e test needs, done from the DaemonSet's YAML: a container's
 * environment (literal values with $(VAR) expanded, ConfigMap keys, downward API fields), its
 * mounts (hostPath volumes with their type checks, an optional Secret that does not exist as an
 * empty volume) and its security context, turned into a CRI CreateContainer request. Anything in
 * the YAML this does not know is an error, so a new field cannot be silently ignored by the test.
 */
import type { ContainerOptions } from '../../helpers/cri.js';

export interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: {
    fieldRef?: { fieldPath: string };
    configMapKeyRef?: { name: string; key: string; optional?: boolean };
  };
}

export interface VolumeMount {
  name: string;
  mountPath: string;
  readOnly?: boolean;
}

export interface Container {
  name: string;
  image: string;
  command?: string[];
  args?: string[];
  env?: EnvVar[];
  volumeMounts?: VolumeMount[];
  securityContext?: { privileged?: boolean; runAsUser?: number };
}

export interface Volume {
  name: string;
  hostPath?: { path: string; type?: string };
  secret?: { secretName: string; optional?: boolean };
}

export interface PodSpec {
  hostNetwork?: boolean;
  terminationGracePeriodSeconds?: number;
  initContainers?: Container[];
  containers: Container[];
  volumes?: Volume[];
}

export interface NodeContext {
  /** ConfigMaps by name (their `data`). */
  configMaps: Record<string, Record<string, string>>;
  /** Downward API values by field path (spec.nodeName, status.hostIP, …). */
  fields: Record<string, string>;
  /** Secrets that exist, by name: a directory holding their files. */
  secrets: Record<string, string>;
  /** An empty directory for an optional Secret that does not exist. */
  emptyDir: string;
}

/** What kubelet does to a host path before mounting it (hostPath `type`), in the node's view. */
export interface HostPathPrep {
  path: string;
  type: string;
}

/** Kubelet's $(VAR) expansion: earlier variables only, `$$` escapes, unknown references kept. */
export function expand(value: string, env: Record<string, string>): string {
  return value.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (m, name: string | undefined) => {
    if (m === '$$') return '$';
    return name !== undefined && env[name] !== undefined ? env[name] : m;
  });
}

export function containerEnv(c: Container, ctx: NodeContext): Record<string, string> {
  const env: Record<string, string> = {};
  for (const e of c.env ?? []) {
    if (e.value !== undefined) {
      env[e.name] = expand(e.value, env);
      continue;
    }
    const from = e.valueFrom;
    if (from?.fieldRef) {
      const v = ctx.fields[from.fieldRef.fieldPath];
      if (v === undefined)
        throw new Error(`${c.name}: ${e.name}: downward API field ${from.fieldRef.fieldPath} unknown`);
      env[e.name] = v;
    } else if (from?.configMapKeyRef) {
      const ref = from.configMapKeyRef;
      const v = ctx.configMaps[ref.name]?.[ref.key];
      if (v !== undefined) env[e.name] = v;
      else if (!ref.optional) throw new Error(`${c.name}: ${e.name}: ConfigMap ${ref.name} has no key ${ref.key}`);
    } else throw new Error(`${c.name}: ${e.name}: unsupported env source ${JSON.stringify(from)}`);
  }
  return env;
}

/** The container's mounts and the host paths kubelet prepares for them. */
export function containerMounts(
  c: Container,
  volumes: Volume[],
  ctx: NodeContext,
): { mounts: NonNullable<ContainerOptions['mounts']>; prepare: HostPathPrep[] } {
  const mounts: NonNullable<ContainerOptions['mounts']> = [];
  const prepare: HostPathPrep[] = [];
  for (const m of c.volumeMounts ?? []) {
    const v = volumes.find((x) => x.name === m.name);
    if (!v) throw new Error(`${c.name}: volume ${m.name} not in the pod spec`);
    let hostPath: string;
    if (v.hostPath) {
      hostPath = v.hostPath.path;
      prepare.push({ path: hostPath, type: v.hostPath.type ?? '' });
    } else if (v.secret) {
      const dir = ctx.secrets[v.secret.secretName];
      if (dir) hostPath = dir;
      else if (v.secret.optional) hostPath = ctx.emptyDir;
      else throw new Error(`${c.name}: Secret ${v.secret.secretName} does not exist`);
    } else throw new Error(`${c.name}: volume ${v.name}: unsupported kind`);
    mounts.push({ containerPath: m.mountPath, hostPath, readonly: m.readOnly ?? v.secret !== undefined });
  }
  return { mounts, prepare };
}

/** A shell script that applies the hostPath types (run in the node's mount namespace). */
export function prepareScript(prep: HostPathPrep[]): string {
  const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  const lines = ['set -e'];
  for (const p of prep) {
    switch (p.type) {
      case 'DirectoryOrCreate':
        lines.push(`[ -d ${q(p.path)} ] || mkdir -p -m 0755 ${q(p.path)}`);
        break;
      case 'FileOrCreate':
        lines.push(
          `[ -e ${q(p.path)} ] || { mkdir -p ${q(p.path.replace(/\/[^/]*$/, '') || '/')}; touch ${q(p.path)}; }`,
        );
        break;
      case 'Directory':
        lines.push(`[ -d ${q(p.path)} ] || { echo "hostPath ${p.path}: not a directory" >&2; exit 1; }`);
        break;
      case 'File':
        lines.push(`[ -f ${q(p.path)} ] || { echo "hostPath ${p.path}: not a file" >&2; exit 1; }`);
        break;
      case '':
        break;
      default:
        throw new Error(`hostPath type ${p.type} not supported here`);
    }
  }
  return `${lines.join('\n')}\n`;
}

/** The CRI CreateContainer options for a container of the pod spec, as kubelet would send them. */
export function toCri(
  c: Container,
  spec: PodSpec,
  ctx: NodeContext,
): { options: ContainerOptions; prepare: HostPathPrep[] } {
  const { mounts, prepare } = containerMounts(c, spec.volumes ?? [], ctx);
  const env = containerEnv(c, ctx);
  // Kubelet expands $(VAR) in command and args too.
  const options: ContainerOptions = {
    name: c.name,
    image: c.image,
    ...(c.command ? { command: c.command.map((x) => expand(x, env)) } : {}),
    ...(c.args ? { args: c.args.map((x) => expand(x, env)) } : {}),
    env,
    mounts,
    logPath: `${c.name}/0.log`,
    privileged: c.securityContext?.privileged ?? false,
    ...(c.securityContext?.runAsUser !== undefined ? { runAsUser: c.securityContext.runAsUser } : {}),
  };
  return { options, prepare };
}
