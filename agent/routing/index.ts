/**
 * The routing data plane: the import surface of agent/routing/ for the agent's wiring.
 *
 *   const kernel = new Iproute2Kernel({ log });
 *   const rec = new RouteReconciler({ kernel, clock: systemClock, log });
 *   rec.start();
 *   const desired = plan({ self, nodes, pools, blocks, learned, uplinkMtu });
 *   await devices.apply(desired.devices);          // tunnels first: routes name them
 *   rec.setDesired(desired, { complete: bgpInSync });
 *   await nat.apply(pools);
 *   // desired.podMtu is the MTU the CNI plugin gives pod veths.
 */
export { type DeviceResult, ipipSupported, TunnelDevices } from './devices.js';
export { FakeKernel } from './fake-kernel.js';
export {
  type Change,
  type ChangeResult,
  isKernelError,
  type Kernel,
  KernelError,
  KernelErrorKind,
  type KernelEvent,
  type KernelObject,
  type KernelOp,
  objectKey,
} from './kernel.js';
export { classifyError, execIn, Iproute2Kernel, type Iproute2KernelOptions, nsCommand } from './kernel-iproute2.js';
export { type DesiredRouteChange, type LearnedChange, LearnedTable } from './learned-table.js';
export { type Encap, EncapOverhead, type MtuPlan, planMtu } from './mtu.js';
export { NAT_TABLE, NatError, NatTable, natScript } from './nat.js';
export { type BasePlan, canonicalIp, canonicalPrefix, type LearnedOutcome, plan, planBase, routeKey } from './plan.js';
export {
  type ObjectFailure,
  type ReconcilerOptions,
  type ReconcilerStatus,
  RouteReconciler,
} from './reconcile.js';
export * from './types.js';
