/**
 * Prometheus metrics for the speaker, read from `speaker.status()` at scrape time. Names follow
 * GoBGP's exporter (pkg/metrics): bgp_peer_state, bgp_routes_{received,accepted,advertised},
 * bgp_{received,sent}_{update,notification,message}_total, plus bgp_peer_flap_total.
 */
import { Counter, Gauge, Registry } from 'prom-client';
import type { Speaker } from './speaker/speaker.js';

const STATES = ['Idle', 'Connect', 'Active', 'OpenSent', 'OpenConfirm', 'Established'] as const;

export function createBgpMetrics(speaker: Speaker): Registry {
  const registry = new Registry();
  const status = () => speaker.peerStatus();
  new Gauge({
    name: 'bgp_peer_state',
    help: 'State of the BGP session with peer (1 for the current session_state)',
    labelNames: ['peer', 'session_state'],
    registers: [registry],
    collect() {
      this.reset();
      for (const p of status())
        for (const s of STATES) this.set({ peer: p.address, session_state: s }, p.state === s ? 1 : 0);
    },
  });
  new Gauge({
    name: 'bgp_peer_up',
    help: 'Session with peer is Established (1) or not (0)',
    labelNames: ['peer'],
    registers: [registry],
    collect() {
      this.reset();
      for (const p of status()) this.set({ peer: p.address }, p.state === 'Established' ? 1 : 0);
    },
  });
  const routes = (name: string, help: string, pick: 'received' | 'accepted' | 'advertised') =>
    new Gauge({
      name,
      help,
      labelNames: ['peer', 'route_family'],
      registers: [registry],
      collect() {
        this.reset();
        for (const p of status())
          for (const f of p.families) this.set({ peer: p.address, route_family: f.family }, f[pick]);
      },
    });
  routes('bgp_routes_received', 'Number of routes received from peer', 'received');
  routes('bgp_routes_accepted', 'Number of routes accepted from peer', 'accepted');
  routes('bgp_routes_advertised', 'Number of routes advertised to peer', 'advertised');
  const counter = (name: string, help: string, pick: (p: ReturnType<typeof status>[number]) => number) =>
    new Counter({
      name,
      help,
      labelNames: ['peer'],
      registers: [registry],
      collect() {
        this.reset();
        for (const p of status()) this.inc({ peer: p.address }, pick(p));
      },
    });
  counter('bgp_received_update_total', 'Number of received BGP UPDATE messages from peer', (p) => p.updatesIn);
  counter('bgp_sent_update_total', 'Number of sent BGP UPDATE messages to peer', (p) => p.updatesOut);
  counter('bgp_received_message_total', 'Number of received BGP messages from peer', (p) => p.messagesIn);
  counter('bgp_sent_message_total', 'Number of sent BGP messages to peer', (p) => p.messagesOut);
  counter('bgp_peer_flap_total', 'Number of times the session with peer left Established', (p) => p.flaps);
  const notif = (name: string, help: string, pick: 'notificationsIn' | 'notificationsOut') =>
    new Counter({
      name,
      help,
      labelNames: ['peer', 'code', 'subcode'],
      registers: [registry],
      collect() {
        this.reset();
        for (const p of status()) {
          for (const [k, n] of Object.entries(p[pick])) {
            const [code = '0', subcode = '0'] = k.split('/');
            this.inc({ peer: p.address, code, subcode }, n);
          }
        }
      },
    });
  notif(
    'bgp_received_notification_total',
    'Number of received BGP NOTIFICATION messages from peer, by code/subcode',
    'notificationsIn',
  );
  notif(
    'bgp_sent_notification_total',
    'Number of sent BGP NOTIFICATION messages to peer, by code/subcode',
    'notificationsOut',
  );
  new Gauge({
    name: 'bgp_loc_rib_prefixes',
    help: 'Prefixes in the Loc-RIB',
    registers: [registry],
    collect() {
      this.set(speaker.status().locRibPrefixes);
    },
  });
  return registry;
}
