/**
 * Petrel's qemu guest harness: real-kernel Linux "nodes" on one machine (for IPIP, which the
 * host kernel lacks, and for `petrelctl lab --mode ipip`). The only import surface of
 * agent/lab/vm/. See guests.ts for the model and guest-scripts.ts for what runs in a guest.
 */
export { formatIpv4, guestAddress, parseIpv4, parseIpv4Cidr, RigConfigError } from './addr.js';
export { VmError, VmErrorCode } from './errors.js';
export {
  type ExecResult,
  type GuestInfo,
  GuestMode,
  type GuestResult,
  type GuestSpec,
  guestExec,
  Rig,
  runGuests,
  type StartGuestsOptions,
  startGuests,
} from './guests.js';
export {
  defaultCacheDir,
  ensureImage,
  findKernelVersion,
  findStaticBusybox,
  type ImageOptions,
  type VmImage,
} from './image.js';
export { BRIDGE, createRigNetwork, netnsPath, type RigNetwork, type RigNetworkOptions } from './net.js';
