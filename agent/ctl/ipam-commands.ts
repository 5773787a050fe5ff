/**
 * `petrelctl ipam ...`: pools, assignment, release, show, check, gc, configure, and node labels.
 * Tables for people; `--json` output is stable (documented in the README "petrelctl JSON").
 */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import {
  type Assignment,
  check,
  type Ipam,
  IpamError,
  type Pool,
  takeSnapshot,
  type Usage,
  usage,
} from '../../ipam-etcd/index.js';
import { type CtlContext, printJson, table } from './common.js';

function poolRows(pools: Pool[]): string[][] {
  return [
    ['NAME', 'CIDR', 'BLOCK', 'IPIP', 'VXLAN', 'NAT', 'DISABLED', 'SELECTOR'],
    ...pools.map((p) => [
      p.name,
      p.cidr,
      `/${p.blockSize}`,
      p.ipipMode,
      p.vxlanMode,
      String(p.natOutgoing),
      String(p.disabled),
      p.nodeSelector,
    ]),
  ];
}

function pct(n: number, d: number | bigint): string {
  const dd = Number(d);
  return dd === 0 ? '0%' : `${((100 * n) / dd).toFixed(n > 0 && (100 * n) / dd < 0.1 ? 3 : 1)}%`;
}

export function renderUsage(u: Usage): string {
  const out: string[] = [];
  out.push(
    table([
      ['POOL', 'CIDR', 'SIZE', 'IN USE', 'UTIL', 'BLOCKS', 'DISABLED'],
      ...u.pools.map((p) => [
        p.name,
        p.cidr,
        p.size,
        String(p.inUse),
        pct(p.inUse, BigInt(p.size)),
        String(p.blocks.length),
        String(p.disabled),
      ]),
    ]),
  );
  const blocks = [
    ...u.pools.flatMap((p) => p.blocks.map((b) => ({ pool: p.name, b }))),
    ...u.orphanBlocks.map((b) => ({ pool: '(none)', b })),
  ];
  if (blocks.length) {
    out.push('');
    out.push(
      table([
        ['BLOCK', 'POOL', 'NODE', 'IN USE', 'FREE', 'UTIL'],
        ...blocks.map(({ pool, b }) => [
          b.cidr,
          pool,
          b.node ?? '(none)',
          String(b.inUse),
          String(b.free),
          pct(b.inUse, b.size),
        ]),
      ]),
    );
    const allocs = blocks.flatMap(({ b }) => b.allocations.map((a) => ({ block: b.cidr, a })));
    if (allocs.length) {
      out.push('');
      out.push(
        table([
          ['IP', 'BLOCK', 'HANDLE', 'NODE', 'NAMESPACE', 'POD'],
          ...allocs.map(({ block, a }) => [
            a.ip,
            block,
            a.handle,
            a.owner.node ?? '',
            a.owner.namespace ?? '',
            a.owner.pod ?? '',
          ]),
        ]),
      );
    }
  }
  return out.join('\n');
}

/** Live owners: JSON `{"pods": ["ns/name", ...], "nodes": ["node", ...]}`, or text with one `ns/name` per line. */
export function parseLiveOwners(text: string, file: string): { pods: Set<string>; nodes?: Set<string> } {
  const t = text.trim();
  if (t.startsWith('{')) {
    let o: { pods?: unknown; nodes?: unknown };
    try {
      o = JSON.parse(t) as typeof o;
    } catch (err) {
      throw new IpamError('invalid', `${file}: not valid JSON`, { cause: err });
    }
    const strs = (v: unknown, f: string): string[] => {
      if (v === undefined) return [];
      if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) {
        throw new IpamError('invalid', `${file}: "${f}" must be an array of strings`);
      }
      return v as string[];
    };
    const pods = new Set(strs(o.pods, 'pods'));
    return o.nodes === undefined ? { pods } : { pods, nodes: new Set(strs(o.nodes, 'nodes')) };
  }
  const pods = new Set<string>();
  for (const [i, line] of t.split('\n').entries()) {
    const l = line.trim();
    if (!l || l.startsWith('#')) continue;
    if (!/^[^/\s]+\/[^/\s]+$/.test(l))
      throw new IpamError('invalid', `${file}:${i + 1}: expected namespace/pod, got ${JSON.stringify(l)}`);
    pods.add(l);
  }
  return { pods };
}

const collect = (v: string, prev: string[] = []) => [...prev, v];

export function registerIpam(program: Command, ctx: CtlContext): void {
  const ipam = program.command('ipam').description('IP address management in etcd: pools, blocks, assignments');

  const pool = ipam.command('pool').description('manage IP pools');
  pool
    .command('add <name>')
    .description('create an IP pool')
    .requiredOption('--cidr <cidr>', 'pool CIDR, e.g. 10.244.0.0/16 or fd00:10:244::/56')
    .option('--block-size <n>', 'block prefix length (default 26 for IPv4, 122 for IPv6)', (v) =>
      parseIntStrict(v, '--block-size'),
    )
    .option('--ipip-mode <mode>', 'Always | CrossSubnet | Never', 'Never')
    .option('--vxlan-mode <mode>', 'Always | CrossSubnet | Never', 'Never')
    .option('--nat-outgoing', 'masquerade traffic leaving the pool', false)
    .option('--disabled', 'create disabled (no new assignments)', false)
    .option('--node-selector <sel>', 'nodes that may assign from it, e.g. "zone == \'a\'"', 'all()')
    .option('--json', 'print the pool as JSON')
    .action(async (name: string, o: Record<string, unknown>) => {
      await ctx.withIpam(async (i) => {
        const p = await i.addPool({
          name,
          cidr: o.cidr as string,
          blockSize: o.blockSize as number | undefined,
          ipipMode: o.ipipMode as string,
          vxlanMode: o.vxlanMode as string,
          natOutgoing: o.natOutgoing as boolean,
          disabled: o.disabled as boolean,
          nodeSelector: o.nodeSelector as string,
        });
        if (o.json) printJson(p);
        else ctx.out(`created pool ${p.name} ${p.cidr} (blocks /${p.blockSize})`);
      });
    });
  pool
    .command('list')
    .alias('ls')
    .description('list IP pools')
    .option('--json', 'JSON array of pools')
    .action(async (o: { json?: boolean }) => {
      await ctx.withIpam(async (i) => {
        const pools = await i.listPools();
        if (o.json) printJson(pools);
        else ctx.out(table(poolRows(pools)));
      });
    });
  pool
    .command('rm <name>')
    .alias('remove')
    .description('remove an IP pool (refused while addresses in it are assigned)')
    .action(async (name: string) => {
      await ctx.withIpam(async (i) => {
        await i.removePool(name);
        ctx.out(`removed pool ${name}`);
      });
    });
  pool
    .command('set <name>')
    .description('change a pool: --disabled/--enabled, --nat-outgoing, --node-selector, modes')
    .option('--disabled', 'stop new assignments')
    .option('--enabled', 'allow new assignments')
    .option('--nat-outgoing <bool>', 'true | false')
    .option('--ipip-mode <mode>', 'Always | CrossSubnet | Never')
    .option('--vxlan-mode <mode>', 'Always | CrossSubnet | Never')
    .option('--node-selector <sel>', 'node selector')
    .action(async (name: string, o: Record<string, string | boolean | undefined>) => {
      await ctx.withIpam(async (i) => {
        if (o.disabled && o.enabled) throw new IpamError('invalid', '--disabled and --enabled exclude each other');
        const p = await i.updatePool(name, {
          disabled: o.disabled ? true : o.enabled ? false : undefined,
          natOutgoing: o.natOutgoing === undefined ? undefined : parseBool(String(o.natOutgoing), '--nat-outgoing'),
          ipipMode: o.ipipMode as string | undefined,
          vxlanMode: o.vxlanMode as string | undefined,
          nodeSelector: o.nodeSelector as string | undefined,
        });
        ctx.out(table(poolRows([p])));
      });
    });

  ipam
    .command('assign')
    .description('assign addresses to a handle on a node')
    .requiredOption('--node <node>', 'node the addresses are for')
    .requiredOption('--handle <handle>', 'handle ID (e.g. k8s-pod-network.<containerID>)')
    .option('--ip <ip>', 'assign this specific address')
    .option('--pool <name>', 'only from this pool (repeatable)', collect)
    .option('--num <k>', 'number of IPv4 addresses (default 1 unless --num6 or --ip)', (v) =>
      parseIntStrict(v, '--num'),
    )
    .option('--num6 <k>', 'number of IPv6 addresses', (v) => parseIntStrict(v, '--num6'))
    .option('--pod <name>', 'owner pod name')
    .option('--namespace <ns>', 'owner pod namespace')
    .option('--json', 'JSON array of assignments')
    .action(async (o: Record<string, unknown>) => {
      await ctx.withIpam(async (i) => {
        const attrs = {
          ...(o.pod ? { pod: o.pod as string } : {}),
          ...(o.namespace ? { namespace: o.namespace as string } : {}),
        };
        let got: Assignment[];
        if (o.ip) {
          if (o.num !== undefined || o.num6 !== undefined) throw new IpamError('invalid', '--ip excludes --num/--num6');
          got = [await i.assignIp({ ip: o.ip as string, handle: o.handle as string, node: o.node as string, attrs })];
        } else {
          const num6 = (o.num6 as number | undefined) ?? 0;
          const num4 = (o.num as number | undefined) ?? (num6 > 0 ? 0 : 1);
          got = await i.autoAssign({
            handle: o.handle as string,
            node: o.node as string,
            num4,
            num6,
            attrs,
            ...(o.pool ? { pools: o.pool as string[] } : {}),
          });
        }
        if (o.json) printJson(got);
        else for (const a of got) ctx.out(a.ip);
      });
    });

  ipam
    .command('release')
    .description('release addresses by handle or by IP (idempotent)')
    .option('--handle <handle>', 'release everything this handle holds')
    .option('--ip <ip>', 'release this address (repeatable)', collect)
    .option('--json', 'JSON array of released addresses')
    .action(async (o: { handle?: string; ip?: string[]; json?: boolean }) => {
      await ctx.withIpam(async (i) => {
        if (!o.handle === !o.ip) throw new IpamError('invalid', 'give exactly one of --handle or --ip');
        const released = o.handle ? await i.releaseByHandle(o.handle) : await i.releaseIps(o.ip ?? []);
        if (o.json) printJson(released);
        else ctx.out(released.length ? released.join('\n') : 'nothing to release');
      });
    });

  ipam
    .command('show')
    .description('usage per pool and per block, with every allocation and its owner')
    .option('--json', 'stable JSON (see README)')
    .action(async (o: { json?: boolean }) => {
      await ctx.withIpam(async (i) => {
        const u = usage(await takeSnapshot(i.store));
        if (o.json) printJson(u);
        else ctx.out(renderUsage(u));
      });
    });

  ipam
    .command('check')
    .description('check IPAM consistency; exits 3 when it finds problems')
    .option('--json', 'JSON {problems: [...]}')
    .action(async (o: { json?: boolean }) => {
      await ctx.withIpam(async (i) => {
        const problems = check(await takeSnapshot(i.store));
        if (o.json) printJson({ problems });
        else {
          if (problems.length)
            ctx.out(table([['PROBLEM', 'KEY', 'DETAIL'], ...problems.map((p) => [p.kind, p.key, p.message])]));
          ctx.out(`check complete: ${problems.length} problem${problems.length === 1 ? '' : 's'}`);
        }
        if (problems.length) ctx.setExitCode(3);
      });
    });

  ipam
    .command('gc')
    .description('release allocations whose owner is gone, then empty blocks (each node keeps its last block)')
    .option(
      '--live-owners <file>',
      'live pods (and nodes): JSON {"pods": ["ns/name"], "nodes": ["node"]} or lines of ns/name',
    )
    .option(
      '--grace <seconds>',
      'allocations younger than this are never released',
      (v) => parseIntStrict(v, '--grace'),
      300,
    )
    .option('--dry-run', 'only report what would be released')
    .option('--json', 'JSON report')
    .action(async (o: { liveOwners?: string; grace: number; dryRun?: boolean; json?: boolean }) => {
      await ctx.withIpam(async (i) => {
        let report: { released: { handle: string; ips: string[] }[]; releasedBlocks: string[] };
        if (o.liveOwners) {
          let text: string;
          try {
            text = readFileSync(o.liveOwners, 'utf8');
          } catch (err) {
            throw new IpamError('invalid', `cannot read ${o.liveOwners}: ${(err as Error).message}`);
          }
          const live = parseLiveOwners(text, o.liveOwners);
          report = await i.gc({
            livePods: live.pods,
            liveNodes: live.nodes,
            graceMs: o.grace * 1000,
            dryRun: o.dryRun ?? false,
          });
        } else {
          report = { released: [], releasedBlocks: await i.releaseEmptyBlocks({ dryRun: o.dryRun ?? false }) };
        }
        if (o.json) printJson({ dryRun: o.dryRun ?? false, ...report });
        else {
          const verb = o.dryRun ? 'would release' : 'released';
          for (const r of report.released) ctx.out(`${verb} ${r.ips.join(', ')} (handle ${r.handle})`);
          for (const b of report.releasedBlocks) ctx.out(`${verb} empty block ${b}`);
          ctx.out(
            `gc: ${report.released.reduce((n, r) => n + r.ips.length, 0)} address(es), ${report.releasedBlocks.length} block(s) ${verb}`,
          );
        }
      });
    });

  ipam
    .command('configure')
    .description('global IPAM settings')
    .option('--strict-affinity <bool>', 'true: never borrow addresses from other nodes’ blocks')
    .option('--max-blocks-per-host <n>', 'per-node block cap (0 = default 20)', (v) =>
      parseIntStrict(v, '--max-blocks-per-host'),
    )
    .option('--json', 'print the resulting config as JSON')
    .action(async (o: { strictAffinity?: string; maxBlocksPerHost?: number; json?: boolean }) => {
      await ctx.withIpam(async (i) => {
        const cfg =
          o.strictAffinity === undefined && o.maxBlocksPerHost === undefined
            ? await i.readConfig()
            : await i.setConfig({
                ...(o.strictAffinity !== undefined
                  ? { strictAffinity: parseBool(o.strictAffinity, '--strict-affinity') }
                  : {}),
                ...(o.maxBlocksPerHost !== undefined ? { maxBlocksPerHost: o.maxBlocksPerHost } : {}),
              });
        if (o.json) printJson(cfg);
        else
          ctx.out(
            table([
              ['STRICT AFFINITY', 'MAX BLOCKS PER HOST'],
              [String(cfg.strictAffinity), String(cfg.maxBlocksPerHost)],
            ]),
          );
      });
    });

  const node = program.command('node').description('node records (labels used by pool node selectors)');
  node
    .command('label <node> <labels...>')
    .description('set a node’s labels, e.g. petrelctl node label node-1 zone=a rack=r7 (replaces all labels)')
    .action(async (name: string, labels: string[]) => {
      await ctx.withIpam(async (i: Ipam) => {
        const map: Record<string, string> = {};
        for (const l of labels) {
          const eq = l.indexOf('=');
          if (eq <= 0) throw new IpamError('invalid', `label ${JSON.stringify(l)} is not key=value`);
          map[l.slice(0, eq)] = l.slice(eq + 1);
        }
        await i.setNodeLabels(name, map);
        ctx.out(`labelled node ${name}`);
      });
    });
}

function parseIntStrict(v: string, flag: string): number {
  if (!/^\d+$/.test(v))
    throw new IpamError('invalid', `${flag} must be a non-negative integer, not ${JSON.stringify(v)}`);
  return Number(v);
}

function parseBool(v: string, flag: string): boolean {
  if (v === 'true') return true;
  if (v === 'false') return false;
  throw new IpamError('invalid', `${flag} must be true or false, not ${JSON.stringify(v)}`);
}
