/**
 * The agent's Prometheus metrics, read at scrape time where possible:
 *   petrel_bgp_peer_state{peer,type,session_state}   1 for the current state
 *   petrel_bgp_peer_up{peer,type}                    1 when Established
 *   petrel_bgp_peer_prefixes{peer,type,direction}    received / accepted / advertised
 *   petrel_bgp_loc_rib_prefixes                      best routes in the Loc-RIB
 *   petrel_routes_programmed                         kernel routes the reconciler holds (hook)
 *   petrel_reconcile_duration_seconds                histogram, observed by the routing part
 *   petrel_ipam_requests_total{op,result}            IPAM socket requests
 *   petrel_node_registered, petrel_etcd_connected    0/1
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { AgentPeerStatus } from '../bgp-runner.js';

const STATES = ['Idle', 'Connect', 'Active', 'OpenSent', 'OpenConfirm', 'Established'] as const;

export interface MetricsSource {
  peers(): AgentPeerStatus[];
  locRibPrefixes(): number;
  routesProgrammed(): number;
  registered(): boolean;
  etcdConnected(): boolean;
}

export interface AgentMetrics {
  registry: Registry;
  reconcileDuration: Histogram;
  ipamRequests: Counter;
}

export function createAgentMetrics(src: MetricsSource): AgentMetrics {
  const registry = new Registry();
  new Gauge({
    name: 'petrel_bgp_peer_state',
    help: 'State of the BGP session with a peer (1 for the current session_state)',
    labelNames: ['peer', 'type', 'session_state'],
    registers: [registry],
    collect() {
      this.reset();
      for (const p of src.peers())
        for (const s of STATES) this.set({ peer: p.address, type: p.type, session_state: s }, p.state === s ? 1 : 0);
    },
  });
  new Gauge({
    name: 'petrel_bgp_peer_up',
    help: 'Session with the peer is Established (1) or not (0)',
    labelNames: ['peer', 'type'],
    registers: [registry],
    collect() {
      this.reset();
      for (const p of src.peers()) this.set({ peer: p.address, type: p.type }, p.state === 'Established' ? 1 : 0);
    },
  });
  new Gauge({
    name: 'petrel_bgp_peer_prefixes',
    help: 'Prefixes received, accepted and advertised per peer',
    labelNames: ['peer', 'type', 'direction'],
    registers: [registry],
    collect() {
      this.reset();
      for (const p of src.peers()) {
        this.set({ peer: p.address, type: p.type, direction: 'received' }, p.prefixesReceived);
        this.set({ peer: p.address, type: p.type, direction: 'accepted' }, p.prefixesAccepted);
        this.set({ peer: p.address, type: p.type, direction: 'advertised' }, p.prefixesAdvertised);
      }
    },
  });
  const gauge = (name: string, help: string, f: () => number) =>
    new Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        this.set(f());
      },
    });
  gauge('petrel_bgp_loc_rib_prefixes', 'Best routes in the BGP Loc-RIB', src.locRibPrefixes);
  gauge('petrel_routes_programmed', 'Kernel routes programmed by the agent', src.routesProgrammed);
  gauge('petrel_node_registered', 'The node record and lease are in place (1) or not (0)', () =>
    src.registered() ? 1 : 0,
  );
  gauge('petrel_etcd_connected', 'The etcd watch is connected (1) or not (0)', () => (src.etcdConnected() ? 1 : 0));
  const reconcileDuration = new Histogram({
    name: 'petrel_reconcile_duration_seconds',
    help: 'Duration of one kernel route reconcile pass',
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  const ipamRequests = new Counter({
    name: 'petrel_ipam_requests_total',
    help: 'IPAM requests served on the agent socket',
    labelNames: ['op', 'result'],
    registers: [registry],
  });
  return { registry, reconcileDuration, ipamRequests };
}
