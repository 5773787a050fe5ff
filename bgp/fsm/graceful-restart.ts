/**
 * Graceful restart (RFC 4724) as reducers, like the FSM: `(state, event) -> (state, actions)`;
 * the speaker runs the actions (sweeping Adj-RIB-In routes, timers, advertising).
 *
 * Helper side, per peer (§4.2), complicating factors:
 * - A session that drops without NOTIFICATION (`graceful`) while the peer negotiated GR keeps
 *   the peer's routes of the families in its GR capability, marked stale, for its Restart Time;
 *   routes of other families go at once. Any other drop withdraws everything.
 * - When the session is back, stale routes stay only for families the new OPEN still lists with
 *   the F bit; they go at that family's End-of-RIB, or when the stale timer (staleTimeSec) fires.
 * - The restart timer and the stale timer are one timer (only one phase is active at a time).
 *
 * Restarting side, per speaker (§4.1, selection deferral): while restarting, nothing is
 * advertised until every peer is settled (see peerSettled) or the deferral timer fires.
 */
import type { FamilyName } from '../codec/index.js';
import type { PeerGracefulRestart } from './states.js';

// ---------------------------------------------------------------- helper side (per peer)

export const GrPhase = {
  /** No stale routes kept. */
  None: 'none',
  /** Session down, peer restarting: its routes are stale until the restart timer fires. */
  Restarting: 'restarting',
  /** Session back, waiting for End-of-RIB of the stale families (or the stale timer). */
  Stale: 'stale',
} as const;
export type GrPhase = (typeof GrPhase)[keyof typeof GrPhase];

export interface GrPeerState {
  phase: GrPhase;
  /** Families with stale routes. */
  staleFamilies: readonly FamilyName[];
}

export const initialGrState: GrPeerState = { phase: GrPhase.None, staleFamilies: [] };

export type GrEvent =
  | {
      type: 'down';
      /** Dropped without NOTIFICATION (TCP failure, hold timer): a restart, if GR was negotiated. */
      graceful: boolean;
      /** The peer's GR capability on the session that went down. */
      peerGr: PeerGracefulRestart | undefined;
      /** The peer was de-configured (no helper behaviour). */
      removed: boolean;
      /** Families the peer has routes in. */
      families: readonly FamilyName[];
    }
  | { type: 'established'; peerGr: PeerGracefulRestart | undefined }
  | { type: 'endOfRib'; family: FamilyName }
  | { type: 'timer' };

export type GrAction =
  /** Withdraw every route of the peer (not a restart). */
  | { type: 'dropAll' }
  /** Mark the peer's routes of these families stale. */
  | { type: 'markStale'; families: readonly FamilyName[] }
  /** Remove the stale routes of `family` (all families if absent); `all`: every route of it. */
  | { type: 'sweep'; family?: FamilyName; all?: true; reason: string }
  | { type: 'startTimer'; ms: number }
  | { type: 'stopTimer' };

export interface GrConfig {
  /** How long stale routes may wait for End-of-RIB after the session is back (default 300). */
  staleTimeSec?: number;
}

export function grStep(s: GrPeerState, e: GrEvent, cfg: GrConfig = {}): { state: GrPeerState; actions: GrAction[] } {
  switch (e.type) {
    case 'down': {
      const gr = e.peerGr;
      if (!e.graceful || !gr || e.removed)
        return { state: initialGrState, actions: [{ type: 'stopTimer' }, { type: 'dropAll' }] };
      const grFamilies = gr.families.map((f) => f.family);
      const actions: GrAction[] = [];
      for (const f of e.families)
        if (!grFamilies.includes(f)) actions.push({ type: 'sweep', family: f, all: true, reason: 'not covered by GR' });
      const stale = e.families.filter((f) => grFamilies.includes(f));
      actions.push({ type: 'markStale', families: grFamilies });
      actions.push({ type: 'startTimer', ms: gr.restartTimeSec * 1000 });
      return { state: { phase: GrPhase.Restarting, staleFamilies: stale }, actions };
    }
    case 'established': {
      // RFC 4724 §4.2: stale routes survive only for families still covered with the F bit.
      const keep = new Set((e.peerGr?.families ?? []).filter((f) => f.forwardingPreserved).map((f) => f.family));
      const actions: GrAction[] = [{ type: 'stopTimer' }];
      for (const f of s.staleFamilies)
        if (!keep.has(f)) actions.push({ type: 'sweep', family: f, reason: 'forwarding state not preserved' });
      const stale = s.staleFamilies.filter((f) => keep.has(f));
      if (stale.length === 0) return { state: initialGrState, actions };
      actions.push({ type: 'startTimer', ms: (cfg.staleTimeSec ?? 300) * 1000 });
      return { state: { phase: GrPhase.Stale, staleFamilies: stale }, actions };
    }
    case 'endOfRib': {
      const actions: GrAction[] = [{ type: 'sweep', family: e.family, reason: 'End-of-RIB' }];
      if (!s.staleFamilies.includes(e.family)) return { state: s, actions };
      const stale = s.staleFamilies.filter((f) => f !== e.family);
      if (stale.length > 0 || s.phase !== GrPhase.Stale)
        return { state: { phase: s.phase, staleFamilies: stale }, actions };
      actions.push({ type: 'stopTimer' });
      return { state: initialGrState, actions };
    }
    case 'timer':
      if (s.phase === GrPhase.None) return { state: s, actions: [] };
      return {
        state: initialGrState,
        actions: [
          {
            type: 'sweep',
            reason: s.phase === GrPhase.Restarting ? 'restart time over' : 'stale time over',
          },
        ],
      };
  }
}

// ---------------------------------------------------------------- restarting side (per speaker)

/** What selection deferral needs to know of one peer. */
export interface DeferralPeerView {
  /** Administratively down or de-configured. */
  shutdown: boolean;
  /** Negotiated families and the peer's GR capability, while Established. */
  established?: { families: readonly FamilyName[]; peerGr: PeerGracefulRestart | undefined };
  /** Families whose End-of-RIB arrived on the current session. */
  eorReceived: ReadonlySet<FamilyName>;
}

/**
 * RFC 4724 §4.1: has the peer stopped holding back our selection? Peers that are shut down, or
 * up without GR, or restarting themselves (R bit) do not count; the others must be up and have
 * sent End-of-RIB for every negotiated family.
 */
export function peerSettled(p: DeferralPeerView): boolean {
  if (p.shutdown) return true;
  const n = p.established;
  if (!n) return false;
  if (!n.peerGr || n.peerGr.restarting) return true;
  return n.families.every((f) => p.eorReceived.has(f));
}

export interface DeferralState {
  deferring: boolean;
}

export type DeferralEvent =
  /** The speaker started; `restarting` from its config, the timer length in seconds. */
  | { type: 'start'; restarting: boolean; selectionDeferralSec: number }
  /** Something a peer's settledness depends on changed; `settled`: every peer is. */
  | { type: 'check'; settled: boolean }
  | { type: 'timer' }
  | { type: 'stop' };

export type DeferralAction =
  | { type: 'startTimer'; ms: number }
  | { type: 'stopTimer' }
  /** Advertise the Loc-RIB to every established peer (+ End-of-RIB) and emit its route events. */
  | { type: 'endDeferral'; reason: string };

export function deferralStep(s: DeferralState, e: DeferralEvent): { state: DeferralState; actions: DeferralAction[] } {
  const off = { deferring: false };
  switch (e.type) {
    case 'start':
      if (!e.restarting) return { state: off, actions: [] };
      return { state: { deferring: true }, actions: [{ type: 'startTimer', ms: e.selectionDeferralSec * 1000 }] };
    case 'check':
      if (!s.deferring || !e.settled) return { state: s, actions: [] };
      return {
        state: off,
        actions: [{ type: 'stopTimer' }, { type: 'endDeferral', reason: 'End-of-RIB from every peer' }],
      };
    case 'timer':
      if (!s.deferring) return { state: s, actions: [] };
      return { state: off, actions: [{ type: 'endDeferral', reason: 'selection deferral timer expired' }] };
    case 'stop':
      // A stopped speaker stays deferring: the withdrawals of its shutdown are not route events.
      return { state: s, actions: s.deferring ? [{ type: 'stopTimer' }] : [] };
  }
}
