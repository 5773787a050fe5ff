/**
 * ATOMIC_AGGREGATE (RFC 4271 §5.1.6), AGGREGATOR (§5.1.7, 2- or 4-octet AS by context) and
 * AS4_AGGREGATOR (RFC 6793). RFC 7606 §7.6/§7.7 and RFC 6793 §6: malformed -> attribute-discard.
 */
import { EncodeError, UpdateSubcode } from '../errors.js';
import { ipv4ToU32 } from '../ip.js';
import { Aggregator2Layout, Aggregator4Layout, ipv4FromU32 } from '../layouts.js';
import { AS_TRANS } from '../open.js';
import { type Aggregator, type AttrDesc, AttrType, OPTIONAL_TRANSITIVE, WELL_KNOWN } from './types.js';

export const atomicAggregateAttr: AttrDesc = {
  typeCode: AttrType.AtomicAggregate,
  name: 'ATOMIC_AGGREGATE',
  flags: WELL_KNOWN,
  action: 'attribute-discard',
  decode(_b, s, e, attrs) {
    if (e !== s) return { subcode: UpdateSubcode.AttributeLengthError, message: `ATOMIC_AGGREGATE length ${e - s}` };
    attrs.atomicAggregate = true;
    return undefined;
  },
  has: (a) => a.atomicAggregate === true,
  encode: () => {},
};

function addressU32(a: Aggregator): number {
  const v = ipv4ToU32(a.address);
  if (v === undefined) throw new EncodeError(`invalid aggregator address ${a.address}`);
  return v;
}

export const aggregatorAttr: AttrDesc = {
  typeCode: AttrType.Aggregator,
  name: 'AGGREGATOR',
  flags: OPTIONAL_TRANSITIVE,
  action: 'attribute-discard',
  decode(b, s, e, attrs, ctx) {
    const want = ctx.as4 ? 8 : 6;
    if (e - s !== want) return { subcode: UpdateSubcode.AttributeLengthError, message: `AGGREGATOR length ${e - s}` };
    const v = (ctx.as4 ? Aggregator4Layout : Aggregator2Layout).decode(b, s);
    attrs.aggregator = { asn: v.asn, address: ipv4FromU32(v.address) };
    return undefined;
  },
  has: (a) => a.aggregator !== undefined,
  encode(a, w, ctx) {
    const agg = a.aggregator as Aggregator;
    const address = addressU32(agg);
    if (ctx.as4) w.layout(Aggregator4Layout, { asn: agg.asn, address });
    else w.layout(Aggregator2Layout, { asn: agg.asn > 0xffff ? AS_TRANS : agg.asn, address });
  },
};

export const as4AggregatorAttr: AttrDesc = {
  typeCode: AttrType.As4Aggregator,
  name: 'AS4_AGGREGATOR',
  flags: OPTIONAL_TRANSITIVE,
  action: 'attribute-discard',
  decode(b, s, e, attrs) {
    if (e - s !== 8) return { subcode: UpdateSubcode.AttributeLengthError, message: `AS4_AGGREGATOR length ${e - s}` };
    const v = Aggregator4Layout.decode(b, s);
    attrs.as4Aggregator = { asn: v.asn, address: ipv4FromU32(v.address) };
    return undefined;
  },
  has: (a) => a.as4Aggregator !== undefined,
  encode(a, w) {
    const agg = a.as4Aggregator as Aggregator;
    w.layout(Aggregator4Layout, { asn: agg.asn, address: addressU32(agg) });
  },
};
