/**
 * `petrelctl lab` through its command line, as a user runs it: two labs side by side (never and
 * vxlan) each healthy with the matrix all OK and the packet path of its mode; add-pod / rm-pod with
 * `ipam check` clean; kill-agent -> start-agent under a live TCP connection between pods on two
 * nodes that survives; `lab exec` into a node and a pod; and `lab down` leaving no namespace,
 * process or directory (idempotent).
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { pidAlive } from '../../../agent/lab/sh.js';
import { CLUSTER_BINS } from '../../helpers/cluster.js';
import { assertGone, labCli, madeBy } from '../../helpers/lab.js';
import { needs } from '../../helpers/needs.js';
import { labFailure, PETRELCTL, run } from '../../helpers/petrelctl.js';
import { type Daemon, startDaemon, waitFor } from '../../helpers/process.js';

const skip = needs('root', 'netns', 'etcd', 'etcdctl', 'cni-plugins', CLUSTER_BINS);
const A = `it${process.pid}-a`;
const B = `it${process.pid}-b`;

const { lab, stateOf, status, statusHealthy: healthy } = labCli(240_000);
const statusHealthy = (name: string) => healthy(name, 30_000);

const KEEPALIVE_SERVER = `
const net = require('net');
net.createServer((s) => { s.on('error', () => {}); s.on('data', (d) => s.write(d)); })
  .listen(7100, '0.0.0.0', () => process.stdout.write('listening\\n'));
`;
// One connection; a line every 100 ms, each echoed; counts the echoes; any error ends it with "ERR".
const KEEPALIVE_CLIENT = `
const net = require('net');
let n = 0;
const s = net.connect({ host: process.argv[1], port: 7100 }, () => {
  process.stdout.write('connected\\n');
  setInterval(() => s.write('x'), 100);
});
s.on('data', (d) => { n += d.length; process.stdout.write('echo ' + n + '\\n'); });
s.on('error', (e) => { process.stdout.write('ERR ' + e.code + '\\n'); process.exit(1); });
s.on('close', () => { process.stdout.write('ERR closed\\n'); process.exit(1); });
`;

describe('petrelctl lab', { skip, concurrency: false }, () => {
  const daemons: Daemon[] = [];
  after(async () => {
    for (const d of daemons) await d.stop(1000);
    await lab('down', '--name', A);
    await lab('down', '--name', B);
  });

  test('two labs side by side: never and vxlan, 3 nodes each, matrix all OK, the path of each mode', async () => {
    const [ra, rb] = await Promise.all([
      lab('up', '--name', A, '--mode', 'never', '--nodes', '3', '--pods-per-node', '1'),
      lab('up', '--name', B, '--mode', 'vxlan', '--nodes', '3', '--pods-per-node', '1'),
    ]);
    assert.equal(ra.code, 0, `lab up ${A}: ${labFailure(ra)}`);
    assert.equal(rb.code, 0, `lab up ${B}: ${labFailure(rb)}`);
    assert.match(ra.stdout, /\[\s*\d+\.\ds\] starting 3 petrel-agents/, 'progress lines with elapsed time');
    assert.match(ra.stdout, /TCP pod x pod:/);
    assert.match(rb.stdout, /\nhealthy\n/);
    const sa = stateOf(A);
    const sb = stateOf(B);
    assert.notEqual(sa.index, sb.index, 'each lab has its own index');
    assert.notEqual(sa.nodes[0]?.ip, sb.nodes[0]?.ip, 'and its own addresses');
    for (const [name, mode, encap] of [
      [A, 'never', 'plain'],
      [B, 'vxlan', 'vxlan'],
    ] as const) {
      const { code, s } = await status(name);
      assert.equal(code, 0, `${name}: ${s.problems.join('; ')}`);
      assert.equal(s.mode, mode);
      assert.equal(s.nodes.length, 3);
      for (const n of s.nodes) {
        assert.equal(n.sessions.length, 2, `${name} ${n.name}: a session to each other node`);
        assert.ok(
          n.sessions.every((x) => x.state === 'Established'),
          JSON.stringify(n.sessions),
        );
        assert.equal(n.blocks.length, 1, `${n.name} holds a block`);
        assert.match(n.statusUrl, new RegExp(`^http://${n.ip.replace(/\./g, '\\.')}:9099$`));
      }
      assert.equal(s.pods.length, 3);
      assert.equal(s.matrix.length, 6, 'every ordered pair of pods');
      assert.ok(
        s.matrix.every((p) => p.ok),
        JSON.stringify(s.matrix),
      );
      assert.equal(s.path?.seen, encap, `${name}: ${s.path?.line}`);
    }
  });

  test('lab exec runs in the node netns (petrelctl node status, etcdctl) and in a pod netns', async () => {
    const st = await run(PETRELCTL, ['lab', 'exec', '--name', B, 'node-1', '--', 'petrelctl', 'node', 'status']);
    assert.equal(st.code, 0, st.stderr);
    assert.match(st.stdout, /Petrel agent on node-1: ready/);
    assert.equal((st.stdout.match(/Established/g) ?? []).length, 2);
    const keys = await run(PETRELCTL, [
      'lab',
      'exec',
      '--name',
      B,
      'node-2',
      '--',
      'etcdctl',
      'get',
      '--prefix',
      '/petrel/',
      '--keys-only',
    ]);
    assert.equal(keys.code, 0, keys.stderr);
    assert.match(keys.stdout, /\/petrel\/ipam\/v1\/affinities\/node-2\//);
    const pod = stateOf(B).pods[0];
    assert.ok(pod);
    const addr = await run(PETRELCTL, [
      'lab',
      'exec',
      '--name',
      B,
      pod.name,
      '--',
      'ip',
      '-4',
      '-o',
      'addr',
      'show',
      'eth0',
    ]);
    assert.match(addr.stdout, new RegExp(`inet ${pod.ip.replace(/\./g, '\\.')}/32`));
    const bad = await lab('exec', '--name', B, 'node-9', '--', 'true');
    assert.equal(bad.code, 2);
  });

  test('down of one lab leaves the other running and healthy', async () => {
    const m = madeBy(stateOf(A));
    const r = await lab('down', '--name', A);
    assert.equal(r.code, 0, r.stderr);
    assertGone(m);
    const again = await lab('down', '--name', A);
    assert.equal(again.code, 0, 'down is idempotent');
    assert.match(again.stdout, /no lab/);
    const { code, s } = await status(B);
    assert.equal(code, 0, s.problems.join('; '));
  });

  test('add-pod on node-2 is reachable from every pod; rm-pod; ipam check clean', async () => {
    const r = await lab('add-pod', '--name', B, 'node-2');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^pod-2-2 on node-2: 10\.244\./);
    let { code, s } = await status(B);
    assert.equal(code, 0, s.problems.join('; '));
    assert.equal(s.pods.length, 4);
    assert.equal(s.matrix.filter((p) => p.to === 'pod-2-2' && p.ok).length, 3, 'the new pod answers every other pod');
    const rm = await lab('rm-pod', '--name', B, 'pod-2-2');
    assert.equal(rm.code, 0, rm.stderr);
    ({ code, s } = await status(B));
    assert.equal(s.pods.length, 3);
    assert.equal(code, 0, s.problems.join('; '));
    const check = await run(PETRELCTL, ['lab', 'exec', '--name', B, 'node-1', '--', 'petrelctl', 'ipam', 'check']);
    assert.equal(check.code, 0, `${check.stdout}${check.stderr}`);
    assert.match(check.stdout, /0 problems/);
    // An unknown pod is a usage error (exit 2, as since rm-pod checks every name first).
    assert.equal((await lab('rm-pod', '--name', B, 'pod-2-2')).code, 2, 'an unknown pod is an error');
  });

  test('kill-agent -> start-agent: a TCP connection between pods on two nodes survives', async () => {
    const s = stateOf(B);
    const server = s.pods.find((p) => p.node === 'node-2');
    const client = s.pods.find((p) => p.node === 'node-1');
    assert.ok(server && client);
    const srv = startDaemon(
      PETRELCTL,
      ['lab', 'exec', '--name', B, server.name, '--', 'node', '-e', KEEPALIVE_SERVER],
      {
        detached: true,
      },
    );
    daemons.push(srv);
    await waitFor('keepalive server', () => srv.output().includes('listening'));
    const cli = startDaemon(
      PETRELCTL,
      ['lab', 'exec', '--name', B, client.name, '--', 'node', '-e', KEEPALIVE_CLIENT, server.ip],
      { detached: true },
    );
    daemons.push(cli);
    await waitFor('keepalive echoes', () => /echo \d+/.test(cli.output()), 10_000);
    const echoes = () => Number(/echo (\d+)\n?$/.exec(cli.output().trimEnd())?.[1] ?? 0);

    const k = await lab('kill-agent', '--name', B, 'node-2');
    assert.equal(k.code, 0, k.stderr);
    const killed = s.nodes.find((n) => n.name === 'node-2')?.agentPid;
    assert.ok(killed);
    await waitFor('agent gone', () => !pidAlive(killed));
    const down = await status(B);
    assert.equal(down.code, 1, 'unhealthy while an agent is down');
    assert.match(down.s.problems.join('\n'), /node-2: agent not running/);
    const duringDown = echoes();
    const st = await lab('start-agent', '--name', B, 'node-2');
    assert.equal(st.code, 0, st.stderr);
    const { code, s: after } = await statusHealthy(B);
    assert.equal(code, 0, after.problems.join('; '));
    await waitFor('more echoes after the restart', () => echoes() > duringDown + 5, 10_000);
    assert.doesNotMatch(cli.output(), /ERR/, cli.output().slice(-500));
    assert.equal(cli.exited(), false, 'the connection is still open');
  });

  test('lab down leaves no namespace, process or directory', async () => {
    for (const d of daemons.splice(0)) {
      try {
        process.kill(-d.pid, 'SIGKILL');
      } catch {
        /* gone */
      }
      await d.stop(1000);
    }
    const m = madeBy(stateOf(B));
    const r = await lab('down', '--name', B);
    assert.equal(r.code, 0, r.stderr);
    assertGone(m);
  });
});
