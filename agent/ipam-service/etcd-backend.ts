/**
 * The IPAM service's backend on Petrel's etcd IPAM: the allocator itself, plus the handle listing
 * GC needs (a snapshot scan of the blocks: GC is rare and must see owner nodes, which only the
 * blocks' attribute tables record).
 */
import { type Ipam, takeSnapshot, usage } from '../../ipam-etcd/index.js';
import type { AssignArgs, Assignment, AutoAssignArgs, Pool } from '../../ipam-etcd/types.js';
import type { IpamBackend } from './service.js';

export class EtcdIpamBackend implements IpamBackend {
  constructor(private readonly ipam: Ipam) {}
  autoAssign(args: AutoAssignArgs): Promise<Assignment[]> {
    return this.ipam.autoAssign(args);
  }
  assignIp(args: AssignArgs): Promise<Assignment> {
    return this.ipam.assignIp(args);
  }
  releaseByHandle(handle: string): Promise<string[]> {
    return this.ipam.releaseByHandle(handle);
  }
  releaseIps(ips: string[]): Promise<string[]> {
    return this.ipam.releaseIps(ips);
  }
  ipsByHandle(handle: string): Promise<Assignment[]> {
    return this.ipam.ipsByHandle(handle);
  }
  listPools(): Promise<Pool[]> {
    return this.ipam.listPools();
  }
  async listHandles(prefix: string, node: string): Promise<string[]> {
    const u = usage(await takeSnapshot(this.ipam.store));
    const out = new Set<string>();
    for (const b of [...u.pools.flatMap((p) => p.blocks), ...u.orphanBlocks]) {
      for (const a of b.allocations) if (a.owner.node === node && a.handle.startsWith(prefix)) out.add(a.handle);
    }
    return [...out];
  }
}
