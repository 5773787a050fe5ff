/** The pure BGP FSM (RFC 4271 §8): import surface for the session driver. */
export type { Action, DownReason } from './actions.js';
export { bgpIdToNumber, collisionLoser } from './collision.js';
export { type FsmEvent, TimerName } from './events.js';
export { type FsmConfig, type FsmEnv, idleHoldFor, jitter, type StepResult, step } from './fsm.js';
export {
  type DeferralAction,
  type DeferralEvent,
  type DeferralPeerView,
  type DeferralState,
  deferralStep,
  type GrAction,
  type GrConfig,
  type GrEvent,
  type GrPeerState,
  GrPhase,
  grStep,
  initialGrState,
  peerSettled,
} from './graceful-restart.js';
export { buildOpen, FAMILY_AFI_SAFI, type LocalOpenOptions, negotiateSession, openFamilies } from './negotiate.js';
export {
  type ConnRef,
  type Direction,
  type FsmState,
  initialState,
  type Negotiated,
  type PeerGracefulRestart,
  State,
} from './states.js';
