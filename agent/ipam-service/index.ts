/** The agent's IPAM socket service: import surface for agent/main.ts and tests. */
export * from './protocol.js';
export { listenIpamSocket, type IpamSocketServer } from './server.js';
export { type IpamBackend, IpamService, type IpamServiceOptions, toWireError } from './service.js';
export { EtcdIpamBackend } from './etcd-backend.js';
export { FakeIpam, fakePool } from './fake-ipam.js';
