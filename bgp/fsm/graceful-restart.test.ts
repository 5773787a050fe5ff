/**
 * Table tests of the graceful-restart reducers (RFC 4724): one row per branch of grStep,
 * peerSettled and deferralStep, with the exact next state and actions.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { FamilyName } from '../codec/index.js';
import {
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
import type { PeerGracefulRestart } from './states.js';

const V4: FamilyName = 'ipv4-unicast';
const V6: FamilyName = 'ipv6-unicast';

const gr = (
  restartTimeSec: number,
  families: [FamilyName, boolean][],
  o: Partial<PeerGracefulRestart> = {},
): PeerGracefulRestart => ({
  restartTimeSec,
  restarting: false,
  notification: false,
  families: families.map(([family, forwardingPreserved]) => ({ family, forwardingPreserved })),
  ...o,
});
const down = (o: Partial<Extract<GrEvent, { type: 'down' }>>): GrEvent => ({
  type: 'down',
  graceful: true,
  peerGr: gr(120, [[V4, true]]),
  removed: false,
  families: [V4],
  ...o,
});
const st = (phase: GrPhase, staleFamilies: FamilyName[]): GrPeerState => ({ phase, staleFamilies });

interface GrRow {
  name: string;
  state: GrPeerState;
  event: GrEvent;
  cfg?: GrConfig;
  next: GrPeerState;
  actions: GrAction[];
}

const GR_ROWS: GrRow[] = [
  // ---- down
  {
    name: 'down with NOTIFICATION (not graceful) -> drop everything, no restart',
    state: initialGrState,
    event: down({ graceful: false }),
    next: initialGrState,
    actions: [{ type: 'stopTimer' }, { type: 'dropAll' }],
  },
  {
    name: 'graceful down without a GR capability from the peer -> drop everything',
    state: initialGrState,
    event: down({ peerGr: undefined }),
    next: initialGrState,
    actions: [{ type: 'stopTimer' }, { type: 'dropAll' }],
  },
  {
    name: 'graceful down of a de-configured peer -> drop everything (no helper)',
    state: initialGrState,
    event: down({ removed: true }),
    next: initialGrState,
    actions: [{ type: 'stopTimer' }, { type: 'dropAll' }],
  },
  {
    name: 'down (not graceful) while already Stale -> everything goes, state reset',
    state: st(GrPhase.Stale, [V4]),
    event: down({ graceful: false }),
    next: initialGrState,
    actions: [{ type: 'stopTimer' }, { type: 'dropAll' }],
  },
  {
    name: 'graceful down, GR covers the only family -> mark stale, restart timer = Restart Time',
    state: initialGrState,
    event: down({ peerGr: gr(90, [[V4, true]]), families: [V4] }),
    next: st(GrPhase.Restarting, [V4]),
    actions: [
      { type: 'markStale', families: [V4] },
      { type: 'startTimer', ms: 90_000 },
    ],
  },
  {
    name: 'graceful down, a family not in the GR capability is swept at once (all routes)',
    state: initialGrState,
    event: down({ peerGr: gr(30, [[V4, false]]), families: [V4, V6] }),
    next: st(GrPhase.Restarting, [V4]),
    actions: [
      { type: 'sweep', family: V6, all: true, reason: 'not covered by GR' },
      { type: 'markStale', families: [V4] },
      { type: 'startTimer', ms: 30_000 },
    ],
  },
  {
    name: 'graceful down with no routes at all -> restarting with nothing stale',
    state: initialGrState,
    event: down({ peerGr: gr(5, [[V4, true]]), families: [] }),
    next: st(GrPhase.Restarting, []),
    actions: [
      { type: 'markStale', families: [V4] },
      { type: 'startTimer', ms: 5_000 },
    ],
  },
  {
    name: 'graceful down while Stale (restart again) -> families of this down, timer restarted',
    state: st(GrPhase.Stale, [V4]),
    event: down({
      peerGr: gr(60, [
        [V4, true],
        [V6, true],
      ]),
      families: [V4, V6],
    }),
    next: st(GrPhase.Restarting, [V4, V6]),
    actions: [
      { type: 'markStale', families: [V4, V6] },
      { type: 'startTimer', ms: 60_000 },
    ],
  },
  // ---- established
  {
    name: 'established with nothing stale -> only stop the timer',
    state: initialGrState,
    event: { type: 'established', peerGr: gr(120, [[V4, true]]) },
    next: initialGrState,
    actions: [{ type: 'stopTimer' }],
  },
  {
    name: 'established, F bit kept -> Stale, stale timer (default 300 s)',
    state: st(GrPhase.Restarting, [V4]),
    event: { type: 'established', peerGr: gr(120, [[V4, true]]) },
    next: st(GrPhase.Stale, [V4]),
    actions: [{ type: 'stopTimer' }, { type: 'startTimer', ms: 300_000 }],
  },
  {
    name: 'established, staleTimeSec from config',
    state: st(GrPhase.Restarting, [V4]),
    event: { type: 'established', peerGr: gr(120, [[V4, true]]) },
    cfg: { staleTimeSec: 7 },
    next: st(GrPhase.Stale, [V4]),
    actions: [{ type: 'stopTimer' }, { type: 'startTimer', ms: 7_000 }],
  },
  {
    name: 'established, F bit cleared for a family -> its stale routes swept, the other stays',
    state: st(GrPhase.Restarting, [V4, V6]),
    event: {
      type: 'established',
      peerGr: gr(120, [
        [V4, true],
        [V6, false],
      ]),
    },
    next: st(GrPhase.Stale, [V4]),
    actions: [
      { type: 'stopTimer' },
      { type: 'sweep', family: V6, reason: 'forwarding state not preserved' },
      { type: 'startTimer', ms: 300_000 },
    ],
  },
  {
    name: 'established, family missing from the new GR capability -> swept, nothing left -> None',
    state: st(GrPhase.Restarting, [V6]),
    event: { type: 'established', peerGr: gr(120, [[V4, true]]) },
    next: initialGrState,
    actions: [{ type: 'stopTimer' }, { type: 'sweep', family: V6, reason: 'forwarding state not preserved' }],
  },
  {
    name: 'established without GR in the new OPEN -> every stale family swept',
    state: st(GrPhase.Restarting, [V4, V6]),
    event: { type: 'established', peerGr: undefined },
    next: initialGrState,
    actions: [
      { type: 'stopTimer' },
      { type: 'sweep', family: V4, reason: 'forwarding state not preserved' },
      { type: 'sweep', family: V6, reason: 'forwarding state not preserved' },
    ],
  },
  // ---- endOfRib
  {
    name: 'End-of-RIB of a family that is not stale -> sweep it (no-op), state unchanged',
    state: st(GrPhase.Stale, [V4]),
    event: { type: 'endOfRib', family: V6 },
    next: st(GrPhase.Stale, [V4]),
    actions: [{ type: 'sweep', family: V6, reason: 'End-of-RIB' }],
  },
  {
    name: 'End-of-RIB of one of two stale families -> Stale with the other, timer kept',
    state: st(GrPhase.Stale, [V4, V6]),
    event: { type: 'endOfRib', family: V4 },
    next: st(GrPhase.Stale, [V6]),
    actions: [{ type: 'sweep', family: V4, reason: 'End-of-RIB' }],
  },
  {
    name: 'End-of-RIB of the last stale family while Stale -> None, timer stopped',
    state: st(GrPhase.Stale, [V6]),
    event: { type: 'endOfRib', family: V6 },
    next: initialGrState,
    actions: [{ type: 'sweep', family: V6, reason: 'End-of-RIB' }, { type: 'stopTimer' }],
  },
  {
    name: 'End-of-RIB of the last stale family while Restarting -> phase kept (restart timer runs)',
    state: st(GrPhase.Restarting, [V4]),
    event: { type: 'endOfRib', family: V4 },
    next: st(GrPhase.Restarting, []),
    actions: [{ type: 'sweep', family: V4, reason: 'End-of-RIB' }],
  },
  // ---- timer
  {
    name: 'timer in None -> nothing',
    state: initialGrState,
    event: { type: 'timer' },
    next: initialGrState,
    actions: [],
  },
  {
    name: 'timer while Restarting -> sweep all stale routes (restart time over)',
    state: st(GrPhase.Restarting, [V4, V6]),
    event: { type: 'timer' },
    next: initialGrState,
    actions: [{ type: 'sweep', reason: 'restart time over' }],
  },
  {
    name: 'timer while Stale -> sweep all stale routes (stale time over)',
    state: st(GrPhase.Stale, [V4]),
    event: { type: 'timer' },
    next: initialGrState,
    actions: [{ type: 'sweep', reason: 'stale time over' }],
  },
];

for (const row of GR_ROWS) {
  test(`grStep: ${row.name}`, () => {
    const frozen = structuredClone(row.state);
    const r = grStep(row.state, row.event, row.cfg);
    assert.deepEqual(r.state, row.next);
    assert.deepEqual(r.actions, row.actions);
    // A reducer: the input state is never changed.
    assert.deepEqual(row.state, frozen);
  });
}

test('grStep: a full restart cycle down -> established -> End-of-RIB per family ends in None', () => {
  let s = initialGrState;
  const all: GrAction[] = [];
  const run = (e: GrEvent) => {
    const r = grStep(s, e, { staleTimeSec: 10 });
    s = r.state;
    all.push(...r.actions);
  };
  const cap = gr(120, [
    [V4, true],
    [V6, true],
  ]);
  run(down({ peerGr: cap, families: [V4, V6] }));
  assert.equal(s.phase, GrPhase.Restarting);
  run({ type: 'established', peerGr: cap });
  assert.equal(s.phase, GrPhase.Stale);
  run({ type: 'endOfRib', family: V6 });
  assert.deepEqual(s, st(GrPhase.Stale, [V4]));
  run({ type: 'endOfRib', family: V4 });
  assert.deepEqual(s, initialGrState);
  // Each start of a timer is followed by a stop before the next start: one timer, one phase.
  const timers = all.filter((a) => a.type === 'startTimer' || a.type === 'stopTimer').map((a) => a.type);
  assert.deepEqual(timers, ['startTimer', 'stopTimer', 'startTimer', 'stopTimer']);
});

// ---------------------------------------------------------------- peerSettled

const view = (o: Partial<DeferralPeerView>): DeferralPeerView => ({ shutdown: false, eorReceived: new Set(), ...o });

const SETTLED_ROWS: { name: string; peer: DeferralPeerView; settled: boolean }[] = [
  { name: 'shut down peer does not hold back selection', peer: view({ shutdown: true }), settled: true },
  { name: 'peer not yet Established holds it back', peer: view({}), settled: false },
  {
    name: 'Established without GR does not hold it back',
    peer: view({ established: { families: [V4], peerGr: undefined } }),
    settled: true,
  },
  {
    name: 'Established peer that is restarting itself (R bit) does not hold it back',
    peer: view({ established: { families: [V4], peerGr: gr(120, [[V4, true]], { restarting: true }) } }),
    settled: true,
  },
  {
    name: 'GR peer without End-of-RIB holds it back',
    peer: view({ established: { families: [V4], peerGr: gr(120, [[V4, true]]) } }),
    settled: false,
  },
  {
    name: 'GR peer with End-of-RIB for one of two families holds it back',
    peer: view({
      established: { families: [V4, V6], peerGr: gr(120, [[V4, true]]) },
      eorReceived: new Set([V4]),
    }),
    settled: false,
  },
  {
    name: 'GR peer with End-of-RIB for every negotiated family is settled',
    peer: view({
      established: { families: [V4, V6], peerGr: gr(120, [[V4, true]]) },
      eorReceived: new Set([V6, V4]),
    }),
    settled: true,
  },
];

for (const row of SETTLED_ROWS) {
  test(`peerSettled: ${row.name}`, () => assert.equal(peerSettled(row.peer), row.settled));
}

// ---------------------------------------------------------------- deferralStep

const ON: DeferralState = { deferring: true };
const OFF: DeferralState = { deferring: false };

const DEFERRAL_ROWS: {
  name: string;
  state: DeferralState;
  event: DeferralEvent;
  next: DeferralState;
  actions: DeferralAction[];
}[] = [
  {
    name: 'start, not restarting -> no deferral',
    state: OFF,
    event: { type: 'start', restarting: false, selectionDeferralSec: 360 },
    next: OFF,
    actions: [],
  },
  {
    name: 'start, restarting -> deferring with the deferral timer',
    state: OFF,
    event: { type: 'start', restarting: true, selectionDeferralSec: 45 },
    next: ON,
    actions: [{ type: 'startTimer', ms: 45_000 }],
  },
  {
    name: 'check while deferring, not all settled -> keep deferring',
    state: ON,
    event: { type: 'check', settled: false },
    next: ON,
    actions: [],
  },
  {
    name: 'check while deferring, all settled -> end deferral, stop timer',
    state: ON,
    event: { type: 'check', settled: true },
    next: OFF,
    actions: [{ type: 'stopTimer' }, { type: 'endDeferral', reason: 'End-of-RIB from every peer' }],
  },
  {
    name: 'check when not deferring -> nothing (no second endDeferral)',
    state: OFF,
    event: { type: 'check', settled: true },
    next: OFF,
    actions: [],
  },
  {
    name: 'timer while deferring -> end deferral',
    state: ON,
    event: { type: 'timer' },
    next: OFF,
    actions: [{ type: 'endDeferral', reason: 'selection deferral timer expired' }],
  },
  {
    name: 'late timer after deferral ended -> nothing',
    state: OFF,
    event: { type: 'timer' },
    next: OFF,
    actions: [],
  },
  {
    name: 'stop while deferring -> stays deferring (no route events for shutdown), timer stopped',
    state: ON,
    event: { type: 'stop' },
    next: ON,
    actions: [{ type: 'stopTimer' }],
  },
  {
    name: 'stop when not deferring -> nothing',
    state: OFF,
    event: { type: 'stop' },
    next: OFF,
    actions: [],
  },
];

for (const row of DEFERRAL_ROWS) {
  test(`deferralStep: ${row.name}`, () => {
    const r = deferralStep(row.state, row.event);
    assert.deepEqual(r.state, row.next);
    assert.deepEqual(r.actions, row.actions);
  });
}
