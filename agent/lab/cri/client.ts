/**
 * A small CRI v1 RuntimeService client (no crictl on these machines) over @grpc/grpc-js, with the
 * project's own minimal schema (api-proto.ts, parsed from text: the bundled petrelctl carries no
 * .proto file). Calls are timed (ms) so the benchmark can report them; sandbox configs look like
 * what kubelet sends (sandboxConfig()). Used by `petrelctl lab up --cri` and the tests.
 */
import * as grpc from '@grpc/grpc-js';
import * as loader from '@grpc/proto-loader';
import protobuf from 'protobufjs';
import { CRI_PROTO } from './api-proto.js';

const LOAD_OPTIONS = { keepCase: true, longs: String, enums: String, defaults: true } as const;

let packageDefinition: loader.PackageDefinition | undefined;

/** The gRPC package definition of CRI_PROTO (parsed once). */
export function criPackageDefinition(): loader.PackageDefinition {
  if (!packageDefinition) {
    const root = protobuf.parse(CRI_PROTO, { keepCase: true }).root;
    packageDefinition = loader.fromJSON(root.toJSON(), LOAD_OPTIONS);
  }
  return packageDefinition;
}

export interface SandboxOptions {
  name: string;
  namespace?: string;
  uid?: string;
  logDirectory: string;
  portMappings?: { containerPort: number; hostPort: number; protocol?: 'TCP' | 'UDP' }[];
  dns?: { servers: string[]; searches?: string[]; options?: string[] };
  annotations?: Record<string, string>;
  labels?: Record<string, string>;
  /** hostNetwork pod (namespace mode NODE: no CNI call, the runtime's own network namespace). */
  hostNetwork?: boolean;
  /** Needed by containerd for privileged containers in the sandbox. */
  privileged?: boolean;
}

/** A container as kubelet asks for it (CreateContainer). */
export interface ContainerOptions {
  name: string;
  image: string;
  command?: string[];
  args?: string[];
  env?: Record<string, string>;
  mounts?: { containerPath: string; hostPath: string; readonly?: boolean }[];
  /** Relative to the sandbox's log directory. */
  logPath: string;
  privileged?: boolean;
  runAsUser?: number;
}

export interface ContainerStatus {
  id: string;
  state: 'CONTAINER_CREATED' | 'CONTAINER_RUNNING' | 'CONTAINER_EXITED' | 'CONTAINER_UNKNOWN';
  exitCode: number;
  reason: string;
  message: string;
  logPath: string;
  /** The container's init process, from the verbose info. */
  pid?: number;
}

export interface SandboxStatus {
  id: string;
  state: 'SANDBOX_READY' | 'SANDBOX_NOTREADY';
  ip: string;
  /** The pod's other addresses (IPv6 of a dual-stack pod). */
  additionalIps: string[];
  /** From the verbose info: the pause process (its /proc/<pid>/ns/net is the pod netns). */
  pid?: number;
  netnsPath?: string;
}

/** The PodSandboxConfig kubelet would send for `o` (pure). */
export function sandboxConfig(o: SandboxOptions): Record<string, unknown> {
  const ns = o.namespace ?? 'default';
  const uid = o.uid ?? `uid-${o.name}`;
  const config = {
    metadata: { name: o.name, uid, namespace: ns, attempt: 0 },
    // A hostNetwork pod keeps the node's hostname (kubelet sends none).
    hostname: o.hostNetwork ? '' : o.name,
    log_directory: `${o.logDirectory}/${ns}_${o.name}_${uid}`,
    labels: o.labels ?? { app: 'petrel-test' },
    annotations: o.annotations ?? {},
    port_mappings: (o.portMappings ?? []).map((p) => ({
      protocol: p.protocol ?? 'TCP',
      container_port: p.containerPort,
      host_port: p.hostPort,
      host_ip: '',
    })),
    ...(o.dns
      ? { dns_config: { servers: o.dns.servers, searches: o.dns.searches ?? [], options: o.dns.options ?? [] } }
      : {}),
    linux: {
      cgroup_parent: '',
      security_context: {
        namespace_options: { network: o.hostNetwork ? 'NODE' : 'POD', pid: 'CONTAINER', ipc: 'POD' },
        privileged: o.privileged ?? false,
      },
    },
  };
  return config;
}

type Callback = (err: grpc.ServiceError | null, res: unknown) => void;
type Method = (req: unknown, opts: grpc.CallOptions, cb: Callback) => void;

export class CriClient {
  private readonly svc: grpc.Client & Record<string, Method>;
  private readonly sandboxConfigs = new Map<string, unknown>();

  constructor(socket: string) {
    const pkg = grpc.loadPackageDefinition(criPackageDefinition()) as unknown as {
      runtime: { v1: { RuntimeService: new (addr: string, creds: grpc.ChannelCredentials) => grpc.Client } };
    };
    this.svc = new pkg.runtime.v1.RuntimeService(`unix://${socket}`, grpc.credentials.createInsecure()) as grpc.Client &
      Record<string, Method>;
  }

  /** Calls `method`; resolves with the response and the call's wall time in ms. */
  call<T>(method: string, req: unknown, timeoutMs = 120_000): Promise<{ res: T; ms: number }> {
    const t0 = performance.now();
    return new Promise((resolve, reject) => {
      const fn = this.svc[method];
      if (!fn) {
        reject(new Error(`no CRI method ${method}`));
        return;
      }
      fn.call(this.svc, req, { deadline: new Date(Date.now() + timeoutMs) }, (err, res) => {
        if (err) reject(new Error(`${method}: ${err.details || err.message}`, { cause: err }));
        else resolve({ res: res as T, ms: performance.now() - t0 });
      });
    });
  }

  async networkReady(): Promise<boolean> {
    const { res } = await this.call<{ status: { conditions: { type: string; status: boolean }[] } }>('Status', {});
    return res.status.conditions.some((c) => c.type === 'NetworkReady' && c.status);
  }

  async runPodSandbox(o: SandboxOptions): Promise<{ id: string; ms: number }> {
    const config = sandboxConfig(o);
    const { res, ms } = await this.call<{ pod_sandbox_id: string }>('RunPodSandbox', { config, runtime_handler: '' });
    this.sandboxConfigs.set(res.pod_sandbox_id, config);
    return { id: res.pod_sandbox_id, ms };
  }

  /** CreateContainer in a sandbox made by runPodSandbox (its config is sent along, as kubelet does). */
  async createContainer(sandboxId: string, o: ContainerOptions): Promise<string> {
    const sandboxConfig = this.sandboxConfigs.get(sandboxId);
    if (!sandboxConfig) throw new Error(`sandbox ${sandboxId} was not made by this client`);
    const config = {
      metadata: { name: o.name, attempt: 0 },
      image: { image: o.image },
      command: o.command ?? [],
      args: o.args ?? [],
      envs: Object.entries(o.env ?? {}).map(([key, value]) => ({ key, value })),
      mounts: (o.mounts ?? []).map((m) => ({
        container_path: m.containerPath,
        host_path: m.hostPath,
        readonly: m.readonly ?? false,
      })),
      log_path: o.logPath,
      linux: {
        security_context: {
          privileged: o.privileged ?? false,
          ...(o.runAsUser !== undefined ? { run_as_user: { value: String(o.runAsUser) } } : {}),
        },
      },
    };
    const { res } = await this.call<{ container_id: string }>('CreateContainer', {
      pod_sandbox_id: sandboxId,
      config,
      sandbox_config: sandboxConfig,
    });
    return res.container_id;
  }

  async startContainer(id: string): Promise<void> {
    await this.call('StartContainer', { container_id: id });
  }

  async stopContainer(id: string, timeoutSec = 10): Promise<void> {
    await this.call('StopContainer', { container_id: id, timeout: String(timeoutSec) });
  }

  async removeContainer(id: string): Promise<void> {
    await this.call('RemoveContainer', { container_id: id });
  }

  async containerStatus(id: string): Promise<ContainerStatus> {
    const { res } = await this.call<{
      status: {
        id: string;
        state: ContainerStatus['state'];
        exit_code: number;
        reason: string;
        message: string;
        log_path: string;
      };
      info: Record<string, string>;
    }>('ContainerStatus', { container_id: id, verbose: true });
    const st = res.status;
    const out: ContainerStatus = {
      id: st.id,
      state: st.state,
      exitCode: st.exit_code,
      reason: st.reason,
      message: st.message,
      logPath: st.log_path,
    };
    const info = res.info?.info;
    if (info) {
      const j = JSON.parse(info) as { pid?: number };
      if (j.pid) out.pid = j.pid;
    }
    return out;
  }

  async status(id: string): Promise<SandboxStatus> {
    const { res } = await this.call<{
      status: {
        id: string;
        state: SandboxStatus['state'];
        network?: { ip: string; additional_ips?: { ip: string }[] };
      };
      info: Record<string, string>;
    }>('PodSandboxStatus', { pod_sandbox_id: id, verbose: true });
    const net = res.status.network;
    const out: SandboxStatus = {
      id: res.status.id,
      state: res.status.state,
      ip: net?.ip ?? '',
      additionalIps: (net?.additional_ips ?? []).map((x) => x.ip),
    };
    const info = res.info?.info;
    if (info) {
      const j = JSON.parse(info) as {
        pid?: number;
        runtimeSpec?: { linux?: { namespaces?: { type: string; path?: string }[] } };
      };
      if (j.pid) out.pid = j.pid;
      const netPath = j.runtimeSpec?.linux?.namespaces?.find((n) => n.type === 'network')?.path;
      if (netPath) out.netnsPath = netPath;
    }
    return out;
  }

  /** Every sandbox this runtime has (ListPodSandbox, no filter). */
  async listPodSandbox(): Promise<{ id: string; name: string; namespace: string; uid: string; state: string }[]> {
    const { res } = await this.call<{
      items: { id: string; state: string; metadata?: { name: string; namespace: string; uid: string } }[];
    }>('ListPodSandbox', {});
    return (res.items ?? []).map((x) => ({
      id: x.id,
      name: x.metadata?.name ?? '',
      namespace: x.metadata?.namespace ?? '',
      uid: x.metadata?.uid ?? '',
      state: x.state,
    }));
  }

  async stopPodSandbox(id: string, timeoutMs?: number): Promise<number> {
    return (await this.call('StopPodSandbox', { pod_sandbox_id: id }, timeoutMs)).ms;
  }

  async removePodSandbox(id: string, timeoutMs?: number): Promise<number> {
    return (await this.call('RemovePodSandbox', { pod_sandbox_id: id }, timeoutMs)).ms;
  }

  close(): void {
    this.svc.close();
  }
}
