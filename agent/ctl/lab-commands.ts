/**
 * `petrelctl lab ...`: a whole Petrel cluster of network-namespace nodes on this machine
 * (agent/lab/lab.ts). Loaded only when `lab` is on the command line.
 */
import { type Command, Option } from 'commander';
import { writeErr, writeOut } from '../common/output.js';
import * as lab from '../lab/lab.js';
import { LabConfigError, LabMode, parseMode } from '../lab/layout.js';
import { LabStateError } from '../lab/state.js';
import type { CtlContext } from './common.js';

const io: lab.LabIo = {
  out: (l) => writeOut(`${l}\n`),
  err: (l) => writeErr(`${l}\n`),
  now: () => performance.now(),
};

const nameOption = () => new Option('--name <name>', 'lab name').env('PETREL_LAB').default('petrel');

const intArg = (flag: string) => (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n)) throw new LabConfigError(`${flag} must be an integer`);
  return n;
};

export function registerLab(program: Command, ctx: CtlContext): void {
  const labCmd = program
    .command('lab')
    .description('a multi-node Petrel cluster in network namespaces on this machine (state in /run/petrel-lab/NAME)');
  const act =
    <A extends unknown[]>(fn: (...a: A) => Promise<number> | number) =>
    async (...a: A) => {
      try {
        ctx.setExitCode(await fn(...a));
      } catch (err) {
        if (err instanceof LabConfigError || err instanceof LabStateError) {
          writeErr(`petrelctl lab: ${err.message}\n`);
          ctx.setExitCode(err instanceof LabConfigError ? 2 : 1);
          return;
        }
        throw err;
      }
    };

  labCmd
    .command('up')
    .description(
      'build the lab: fabric bridge, etcd, one petrel-agent per node netns, pods via the CNI plugin; print its health',
    )
    .addOption(nameOption())
    .option('--nodes <n>', 'nodes', intArg('--nodes'), 3)
    .addOption(new Option('--mode <mode>', 'pool encapsulation').choices(Object.values(LabMode)).default('vxlan'))
    .option('--pods-per-node <n>', 'pods made on every node', intArg('--pods-per-node'), 2)
    .option('--ipv6', 'dual stack: IPv6 node addresses and an IPv6 pool too')
    .option('--external-router', 'a BIRD 2 router on the fabric peering with every node (eBGP, AS 65000)')
    .option('--ui [host:port]', 'serve petrelctl ui for the lab on this loopback address (default 127.0.0.1:9180)')
    .option(
      '--cri',
      'a containerd (CRI) per node: pods are pod sandboxes, containerd calls the plugin as under kubelet',
    )
    .action(
      act(
        async (o: {
          name: string;
          nodes: number;
          mode: string;
          podsPerNode: number;
          ipv6?: boolean;
          externalRouter?: boolean;
          ui?: boolean | string;
          cri?: boolean;
        }) =>
          lab.labUp(
            {
              name: o.name,
              nodes: o.nodes,
              mode: parseMode(o.mode),
              podsPerNode: o.podsPerNode,
              ipv6: o.ipv6 === true,
              externalRouter: o.externalRouter === true,
              cri: o.cri === true,
              ...(o.ui ? { ui: o.ui === true ? '127.0.0.1:9180' : o.ui } : {}),
            },
            io,
          ),
      ),
    );

  labCmd
    .command('status')
    .description('re-measure the lab: nodes, BGP sessions, pods, pod x pod TCP, packet path (exit 0 when healthy)')
    .addOption(nameOption())
    .option('--json', 'JSON (schema in README "Lab")')
    .action(act((o: { name: string; json?: boolean }) => lab.labStatus(o.name, o.json === true, io)));

  labCmd
    .command('exec <target> [cmd...]')
    .description('run CMD in a node or pod netns: lab exec node-1 -- petrelctl node status')
    .addOption(nameOption())
    .action(act(async (target: string, cmd: string[], o: { name: string }) => lab.labExec(o.name, target, cmd)));

  labCmd
    .command('restart-etcd')
    .description("stop the lab's etcd (data kept), wait, start it again on the same address")
    .addOption(nameOption())
    .option('--down-ms <ms>', 'how long etcd stays down', intArg('--down-ms'), 0)
    .action(act((o: { name: string; downMs: number }) => lab.labRestartEtcd(o.name, o.downMs, io)));

  // One argument each: a node or a pod.
  const single: [string, string, (name: string, arg: string, io: lab.LabIo) => Promise<number>][] = [
    ['kill-agent <node>', "SIGKILL a node's petrel-agent (kernel routes stay)", lab.labKillAgent],
    ['start-agent <node>', "start a node's petrel-agent again", lab.labStartAgent],
  ];
  for (const [spec, description, fn] of single)
    labCmd
      .command(spec)
      .description(description)
      .addOption(nameOption())
      .action(act((arg: string, o: { name: string }) => fn(o.name, arg, io)));

  labCmd
    .command('add-pod <node>')
    .description('pods on NODE through the petrel CNI plugin (ADD), or its containerd in a --cri lab')
    .addOption(nameOption())
    .option('--count <n>', 'how many', intArg('--count'), 1)
    .action(act((node: string, o: { name: string; count: number }) => lab.labAddPod(o.name, node, io, o.count)));

  labCmd
    .command('rm-pod <pods...>')
    .description('remove pods (CNI DEL, then their netns; StopPodSandbox + RemovePodSandbox in a --cri lab)')
    .addOption(nameOption())
    .action(act((pods: string[], o: { name: string }) => lab.labRmPod(o.name, pods, io)));

  labCmd
    .command('keep-guests <spec>', { hidden: true })
    .description("holds a guest lab's qemu guests (started by lab up)")
    .action(act((spec: string) => lab.labKeepGuests(spec)));

  labCmd
    .command('down')
    .description('remove the lab: its processes, namespaces and directory (idempotent)')
    .addOption(nameOption())
    .action(act((o: { name: string }) => lab.labDown(o.name, io)));
}
