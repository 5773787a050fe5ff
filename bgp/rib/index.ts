/** The pure RIB: Adj-RIB-In, Loc-RIB with best-path selection and ECMP, Adj-RIB-Out with export rules. */
export { AdjRibIn, importCheck, type LocalIdentity, type RejectReason } from './adj-rib-in.js';
export { AdjRibOut, type ExportPeer, exportRoute, type OutGroup, type OutWithdraw } from './adj-rib-out.js';
export { attrsKey } from './attrs-key.js';
export {
  asPathLength,
  localPrefOf,
  MULTIPATH_STEPS,
  neighbourAs,
  type Selection,
  type SelectionStep,
  selectBest,
  TIE_BREAK_STEPS,
} from './best-path.js';
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
  type RibOps,
  ribOpsFromUpdate,
  toPrefix,
  withdrawNlri,
  withdrawUpdate,
} from './from-update.js';
export { type BestChange, LocRib, type LocRibEntry, nextHopsOf } from './loc-rib.js';
export {
  canonicalPrefix,
  compareAddresses,
  familyOfPrefix,
  formatPrefix,
  type ParsedPrefix,
  parsePrefix,
  prefixWithin,
} from './prefix.js';
export { type PeerInfo, type Route, type RouteAttrs, sourceKey } from './types.js';
