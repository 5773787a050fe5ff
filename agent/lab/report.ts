/**
 * Pure: a lab's health summary (what `lab up` prints at the end and `lab status [--json]` prints),
 * the verdict "healthy" with the reasons it is not, and its text rendering. The JSON form of
 * LabSummary is the schema documented in README.md ("Lab").
 */
import type { LabMode } from './layout.js';

/** The matrix source name of the external router's probes. */
export const EXTERNAL_SOURCE = 'ext-router';

export type Encap = 'ipip' | 'vxlan' | 'plain';

export interface SessionSummary {
  peer: string;
  type: string;
  state: string;
}

export interface NodeSummary {
  name: string;
  ip: string;
  ip6?: string;
  asNumber: number;
  blocks: string[];
  /** Registered and its lease alive in etcd. */
  alive: boolean;
  /** 'running' (PID alive), 'stopped'. */
  agent: 'running' | 'stopped';
  agentPid?: number;
  statusUrl: string;
  /** The agent's readiness, or undefined when its status endpoint did not answer. */
  ready?: boolean;
  sessions: SessionSummary[];
}

export interface PodSummary {
  name: string;
  node: string;
  ip: string;
  ip6: string;
}

/** One TCP connect from a pod to one address of another pod. */
export interface Probe {
  from: string;
  to: string;
  addr: string;
  ok: boolean;
  error?: string;
}

export interface PathSummary {
  from: string;
  to: string;
  /** What the capture on the source node's uplink saw ('none': no frame of that connection). */
  seen: Encap | 'none';
  expected: Encap;
  /** The captured line (tcpdump). */
  line: string;
}

export interface LabSummary {
  name: string;
  mode: LabMode;
  index: number;
  etcd: string;
  nodes: NodeSummary[];
  pods: PodSummary[];
  matrix: Probe[];
  path?: PathSummary;
  /** With --external-router: BIRD's sessions (one per node and family); its TCP probes are in matrix (from EXTERNAL_SOURCE). */
  externalRouter?: { ip: string; asNumber: number; sessions: { name: string; state: string }[] };
  healthy: boolean;
  problems: string[];
}

/** The reasons a lab is not healthy (empty = healthy). */
export function problemsOf(s: Omit<LabSummary, 'healthy' | 'problems'>): string[] {
  const out: string[] = [];
  for (const n of s.nodes) {
    if (n.agent !== 'running') out.push(`${n.name}: agent not running`);
    else if (n.ready === undefined) out.push(`${n.name}: agent status endpoint did not answer`);
    else if (!n.ready) out.push(`${n.name}: agent not ready`);
    if (!n.alive) out.push(`${n.name}: no live node record`);
    for (const x of n.sessions) if (x.state !== 'Established') out.push(`${n.name}: BGP ${x.peer} ${x.state}`);
  }
  for (const x of s.externalRouter?.sessions ?? [])
    if (x.state !== 'Established') out.push(`external router: BGP ${x.name} ${x.state}`);
  if (s.externalRouter && s.externalRouter.sessions.length === 0) out.push('external router: no BGP session');
  for (const p of s.matrix) if (!p.ok) out.push(`${p.from} -> ${p.to} (${p.addr}): ${p.error ?? 'failed'}`);
  if (s.path && s.path.seen !== s.path.expected)
    out.push(`path ${s.path.from} -> ${s.path.to}: saw ${s.path.seen}, expected ${s.path.expected}`);
  return out;
}

export function summarize(s: Omit<LabSummary, 'healthy' | 'problems'>): LabSummary {
  const problems = problemsOf(s);
  return { ...s, healthy: problems.length === 0, problems };
}

/** Left-aligned columns separated by two spaces; the first row is the header. */
export function table(rows: string[][]): string {
  const widths: number[] = [];
  for (const r of rows) {
    r.forEach((c, i) => {
      widths[i] = Math.max(widths[i] ?? 0, c.length);
    });
  }
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join('  ')).join('\n');
}

/**
 * The pod x pod matrix: a row per source pod, a column per destination pod; "ok" when every address
 * of the destination answered, "-" on the diagonal, else "FAIL".
 */
export function renderMatrix(
  pods: readonly string[],
  probes: readonly Probe[],
  extraSources: readonly string[] = [],
): string {
  const cell = (from: string, to: string) => {
    if (from === to) return '-';
    const ps = probes.filter((p) => p.from === from && p.to === to);
    if (ps.length === 0) return '?';
    return ps.every((p) => p.ok) ? 'ok' : 'FAIL';
  };
  return table([
    ['FROM \\ TO', ...pods],
    ...[...pods, ...extraSources].map((f) => [f, ...pods.map((t) => cell(f, t))]),
  ]);
}

const ENCAP_TEXT: Record<Encap | 'none', string> = {
  ipip: 'IPIP (IP proto 4)',
  vxlan: 'VXLAN (UDP 4789)',
  plain: 'plain (no encapsulation)',
  none: 'nothing captured',
};

export function renderSummary(s: LabSummary): string {
  const out: string[] = [];
  out.push(`Lab ${s.name}: mode ${s.mode}, ${s.nodes.length} nodes, ${s.pods.length} pods, etcd ${s.etcd}`);
  out.push('');
  out.push(
    table([
      ['NODE', 'ADDRESS', 'AS', 'AGENT', 'BLOCKS', 'BGP SESSIONS'],
      ...s.nodes.map((n) => [
        n.name,
        [n.ip, n.ip6].filter(Boolean).join(','),
        String(n.asNumber),
        n.agent === 'running' ? `pid ${n.agentPid ?? '?'}${n.ready === false ? ' (not ready)' : ''}` : 'stopped',
        n.blocks.join(',') || '-',
        n.sessions.length === 0
          ? '-'
          : `${n.sessions.filter((x) => x.state === 'Established').length}/${n.sessions.length} up${n.sessions
              .filter((x) => x.state !== 'Established')
              .map((x) => ` ${x.peer}:${x.state}`)
              .join('')}`,
      ]),
    ]),
  );
  out.push('');
  out.push(
    s.pods.length === 0
      ? 'no pods'
      : table([
          ['POD', 'NODE', 'ADDRESS'],
          ...s.pods.map((p) => [p.name, p.node, [p.ip, p.ip6].filter(Boolean).join(',')]),
        ]),
  );
  if (s.pods.length > 1 || (s.externalRouter && s.pods.length > 0)) {
    out.push('');
    out.push('TCP pod x pod:');
    out.push(
      renderMatrix(
        s.pods.map((p) => p.name),
        s.matrix,
        s.externalRouter ? [EXTERNAL_SOURCE] : [],
      ),
    );
  }
  if (s.externalRouter) {
    const up = s.externalRouter.sessions.filter((x) => x.state === 'Established').length;
    out.push('');
    out.push(
      `External router (BIRD) ${s.externalRouter.ip} AS ${s.externalRouter.asNumber}: ${up}/${s.externalRouter.sessions.length} sessions up` +
        s.externalRouter.sessions
          .filter((x) => x.state !== 'Established')
          .map((x) => ` ${x.name}:${x.state}`)
          .join(''),
    );
  }
  if (s.path) {
    out.push('');
    out.push(
      `Path ${s.path.from} -> ${s.path.to}, on the uplink of ${s.path.from}'s node: ${ENCAP_TEXT[s.path.seen]}` +
        (s.path.seen === s.path.expected ? '' : ` (expected ${ENCAP_TEXT[s.path.expected]})`),
    );
    if (s.path.line) out.push(`  ${s.path.line}`);
  }
  out.push('');
  out.push(s.healthy ? 'healthy' : `NOT healthy:\n${s.problems.map((p) => `  ${p}`).join('\n')}`);
  return out.join('\n');
}

/** Which encapsulation a tcpdump line shows. */
export function encapOfLine(line: string): Encap | 'none' {
  if (line.trim() === '') return 'none';
  if (/VXLAN|\.4789[: ]/.test(line)) return 'vxlan';
  if (/ipip-proto-4|proto IPIP|IP \S+ > \S+: IP /.test(line)) return 'ipip';
  return 'plain';
}
