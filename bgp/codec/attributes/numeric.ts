/**
 * u32-valued attributes: MULTI_EXIT_DISC (RFC 4271 §5.1.4) and LOCAL_PREF (§5.1.5), and the
 * router-ID-valued ORIGINATOR_ID (RFC 4456 §8). RFC 7606 §7.4/§7.5/§7.9: length != 4 -> treat-as-withdraw.
 */
import { EncodeError, UpdateSubcode } from '../errors.js';
import { ipv4ToU32 } from '../ip.js';
import { ipv4FromU32 } from '../layouts.js';
import { type AttrDesc, AttrType, OPTIONAL_NON_TRANSITIVE, WELL_KNOWN } from './types.js';

function lengthProblem(name: string, n: number) {
  return { subcode: UpdateSubcode.AttributeLengthError, message: `${name} length ${n}` };
}

export const medAttr: AttrDesc = {
  typeCode: AttrType.MultiExitDisc,
  name: 'MULTI_EXIT_DISC',
  flags: OPTIONAL_NON_TRANSITIVE,
  action: 'treat-as-withdraw',
  decode(b, s, e, attrs) {
    if (e - s !== 4) return lengthProblem('MULTI_EXIT_DISC', e - s);
    attrs.med = b.readUInt32BE(s);
    return undefined;
  },
  has: (a) => a.med !== undefined,
  encode: (a, w) => w.u32(a.med as number),
};

export const localPrefAttr: AttrDesc = {
  typeCode: AttrType.LocalPref,
  name: 'LOCAL_PREF',
  flags: WELL_KNOWN,
  action: 'treat-as-withdraw',
  decode(b, s, e, attrs) {
    if (e - s !== 4) return lengthProblem('LOCAL_PREF', e - s);
    attrs.localPref = b.readUInt32BE(s);
    return undefined;
  },
  has: (a) => a.localPref !== undefined,
  encode: (a, w) => w.u32(a.localPref as number),
};

export const originatorIdAttr: AttrDesc = {
  typeCode: AttrType.OriginatorId,
  name: 'ORIGINATOR_ID',
  flags: OPTIONAL_NON_TRANSITIVE,
  action: 'treat-as-withdraw',
  decode(b, s, e, attrs) {
    if (e - s !== 4) return lengthProblem('ORIGINATOR_ID', e - s);
    attrs.originatorId = ipv4FromU32(b.readUInt32BE(s));
    return undefined;
  },
  has: (a) => a.originatorId !== undefined,
  encode(a, w) {
    const v = ipv4ToU32(a.originatorId as string);
    if (v === undefined) throw new EncodeError(`invalid ORIGINATOR_ID ${a.originatorId}`);
    w.u32(v);
  },
};

/** CLUSTER_LIST (RFC 4456 §8). RFC 7606 §7.10: length 0 or not a multiple of 4 -> treat-as-withdraw. */
export const clusterListAttr: AttrDesc = {
  typeCode: AttrType.ClusterList,
  name: 'CLUSTER_LIST',
  flags: OPTIONAL_NON_TRANSITIVE,
  action: 'treat-as-withdraw',
  decode(b, s, e, attrs) {
    if (e - s === 0 || (e - s) % 4 !== 0) return lengthProblem('CLUSTER_LIST', e - s);
    const out: string[] = [];
    for (let p = s; p < e; p += 4) out.push(ipv4FromU32(b.readUInt32BE(p)));
    attrs.clusterList = out;
    return undefined;
  },
  has: (a) => a.clusterList !== undefined,
  encode(a, w) {
    for (const id of a.clusterList as string[]) {
      const v = ipv4ToU32(id);
      if (v === undefined) throw new EncodeError(`invalid CLUSTER_LIST entry ${id}`);
      w.u32(v);
    }
  },
};
