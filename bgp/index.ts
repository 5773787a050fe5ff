/**
 * Petrel BGP: the only import surface for code outside bgp/ (STYLE §2).
 *
 *   const speaker = new Speaker({ asn: 64512, routerId: '10.0.0.1', listen: { address: '0.0.0.0', port: 179 } }, { log });
 *   speaker.on('route', (ev) => ...);            // { event: 'add'|'replace'|'withdraw', prefix, nextHops }
 *   speaker.addPeer({ address: '10.0.0.2', asn: 64512 });
 *   await speaker.start();
 *   speaker.announce('10.244.1.0/26');
 *   speaker.peerStatus();                        // state, uptime, prefixes, last error ...
 *   await speaker.stop('node draining');         // Cease 6/2 with the communication
 */
export type { FamilyName } from './codec/index.js';
export { BgpConfigError, type BgpRunConfig, parseBgpConfig, parseBgpConfigText } from './config.js';
export type { State } from './fsm/index.js';
export { createBgpMetrics } from './metrics.js';
export type { FilterRule, PrefixMatch, RouteFilter } from './rib/index.js';
export {
  type DesiredBgpConfig,
  diffSpeakerConfig,
  isEmptyDiff,
  type PeerChange,
  type PeerChangeAction,
  peerKey,
  type SpeakerConfigDiff,
} from './speaker/config-diff.js';
export { Speaker, type SpeakerDeps, type SpeakerEvents } from './speaker/speaker.js';
export {
  ADMIN_HEADER,
  type StatusServer,
  type StatusServerOptions,
  startStatusServer,
} from './speaker/status-server.js';
export { type Conn, FakeNetwork, type Network, tcpNetwork } from './speaker/transport.js';
export {
  type AddressFamily,
  type AnnounceOptions,
  type FamilyCounts,
  type MaxPrefixes,
  type PeerConfig,
  type PeerStatus,
  type RouteEvent,
  type SpeakerConfig,
  SpeakerError,
  type SpeakerStatus,
} from './speaker/types.js';
