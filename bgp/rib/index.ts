/** The pure RIB: Adj-RIB-In, Loc-RIB with best-path selection and ECMP, Adj-RIB-Out with export rules. */
export { AdjRibIn, importCheck, type LocalIdentity, type RejectReason } from './adj-rib-in.js';
export { type ExportPeer, exportRoute } from './adj-rib-out.js';
export { attrsKey } from './attrs-key.js';
export {
  asPathLength,
  bestOf,
  groupOf,
  localPrefOf,
  MULTIPATH_STEPS,
  neighbourAs,
  type Paths,
  type Selection,
  type SelectionStep,
  selectBest,
  TIE_BREAK_STEPS,
} from './best-path.js';
export { type CommunityAttrs, parseCommunities } from './communities.js';
export { type AnnounceGroup, type ExportPlan, type ExportTarget, type PeerPlan, planExport } from './export-plan.js';
export {
  type CompiledFilter,
  compileFilter,
  FilterConfigError,
  type FilterRule,
  type PrefixMatch,
  type RouteFilter,
} from './filter.js';
export {
  announceNlri,
  announceUpdate,
  type FamilyPrefixes,
  type RibOps,
  ribOpsFromUpdate,
  toPrefix,
  withdrawNlri,
  withdrawUpdate,
} from './from-update.js';
export { type BestChange, hasPaths, LocRib, type LocRibEntry, NO_PATHS, nextHopsOf } from './loc-rib.js';
export {
  canonicalPrefix,
  compareAddresses,
  familyOfPrefix,
  formatPrefix,
  type ParsedPrefix,
  parsePrefix,
  prefixWithin,
} from './prefix.js';
export {
  addSlot,
  EMPTY_SLOTS,
  hasSlot,
  isEmptySlots,
  removeSlot,
  type SlotSet,
  slotsOf,
} from './slot-set.js';
export type { PeerInfo, Route, RouteAttrs } from './types.js';
