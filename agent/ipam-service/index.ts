/** The agent's IPAM socket service: import surface for agent/main.ts and tests. */

export { EtcdIpamBackend } from './etcd-backend.js';
export { FakeIpam, fakePool } from './fake-ipam.js';
export * from './pod-ipam.js';
export * from './protocol.js';
export { type IpamSocketServer, listenIpamSocket } from './server.js';
export { type IpamBackend, IpamService, type IpamServiceOptions, type PodAnnotations, toWireError } from './service.js';
