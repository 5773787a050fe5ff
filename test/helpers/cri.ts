/**
 * A small CRI v1 RuntimeService client (no crictl on these machines) over @grpc/grpc-js, with the
 * project's own minimal schema (test/helpers/cri/api.proto). Calls are timed (ms) so the
 * benchmark can report them; sandbox configs look like what kubelet sends.
 */
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as loader from '@grpc/proto-loader';

const PROTO = fileURLToPath(new URL('../../../test/helpers/cri/api.proto', import.meta.url));

export interface SandboxOptions {
  name: string;
  namespace?: string;
  uid?: string;
  logDirectory: string;
  portMappings?: { containerPort: number; hostPort: number; protocol?: 'TCP' | 'UDP' }[];
  dns?: { servers: string[]; searches?: string[]; options?: string[] };
  annotations?: Record<string, string>;
}

export interface SandboxStatus {
  id: string;
  state: 'SANDBOX_READY' | 'SANDBOX_NOTREADY';
  ip: string;
  /** From the verbose info: the pause process (its /proc/<pid>/ns/net is the pod netns). */
  pid?: number;
  netnsPath?: string;
}

type Callback = (err: grpc.ServiceError | null, res: unknown) => void;
type Method = (req: unknown, opts: grpc.CallOptions, cb: Callback) => void;

export class CriClient {
  private readonly svc: grpc.Client & Record<string, Method>;

  constructor(socket: string) {
    const def = loader.loadSync(PROTO, { keepCase: true, longs: String, enums: String, defaults: true });
    const pkg = grpc.loadPackageDefinition(def) as unknown as {
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
    const ns = o.namespace ?? 'default';
    const uid = o.uid ?? `uid-${o.name}`;
    const config = {
      metadata: { name: o.name, uid, namespace: ns, attempt: 0 },
      hostname: o.name,
      log_directory: `${o.logDirectory}/${ns}_${o.name}_${uid}`,
      labels: { app: 'petrel-test' },
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
        security_context: { namespace_options: { network: 'POD', pid: 'CONTAINER', ipc: 'POD' } },
      },
    };
    const { res, ms } = await this.call<{ pod_sandbox_id: string }>('RunPodSandbox', { config, runtime_handler: '' });
    return { id: res.pod_sandbox_id, ms };
  }

  async status(id: string): Promise<SandboxStatus> {
    const { res } = await this.call<{
      status: { id: string; state: SandboxStatus['state']; network?: { ip: string } };
      info: Record<string, string>;
    }>('PodSandboxStatus', { pod_sandbox_id: id, verbose: true });
    const out: SandboxStatus = { id: res.status.id, state: res.status.state, ip: res.status.network?.ip ?? '' };
    const info = res.info?.info;
    if (info) {
      const j = JSON.parse(info) as {
        pid?: number;
        runtimeSpec?: { linux?: { namespaces?: { type: string; path?: string }[] } };
      };
      if (j.pid) out.pid = j.pid;
      const net = j.runtimeSpec?.linux?.namespaces?.find((n) => n.type === 'network')?.path;
      if (net) out.netnsPath = net;
    }
    return out;
  }

  async stopPodSandbox(id: string): Promise<number> {
    return (await this.call('StopPodSandbox', { pod_sandbox_id: id })).ms;
  }

  async removePodSandbox(id: string): Promise<number> {
    return (await this.call('RemovePodSandbox', { pod_sandbox_id: id })).ms;
  }

  close(): void {
    this.svc.close();
  }
}
