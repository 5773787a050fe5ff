/** Path attribute value types and the per-attribute descriptor shared by the attribute codecs. */
import type { CodecContext } from '../context.js';
import type { ErrorAction } from '../errors.js';
import type { Prefix } from '../types.js';
import type { Writer } from '../writer.js';

/** RFC 4271 §4.3 attribute flag bits. */
export const AttrFlag = { Optional: 0x80, Transitive: 0x40, Partial: 0x20, ExtendedLength: 0x10 } as const;

/** Attribute type codes (IANA). */
export const AttrType = {
  Origin: 1,
  AsPath: 2,
  NextHop: 3,
  MultiExitDisc: 4,
  LocalPref: 5,
  AtomicAggregate: 6,
  Aggregator: 7,
  Communities: 8,
  OriginatorId: 9,
  ClusterList: 10,
  MpReachNlri: 14,
  MpUnreachNlri: 15,
  As4Path: 17,
  As4Aggregator: 18,
  LargeCommunities: 32,
} as const;
export type AttrType = (typeof AttrType)[keyof typeof AttrType];

export type Origin = 'igp' | 'egp' | 'incomplete';

export type AsPathSegmentType = 'set' | 'sequence' | 'confed-sequence' | 'confed-set';
export interface AsPathSegment {
  type: AsPathSegmentType;
  asns: number[];
}

export interface Aggregator {
  asn: number;
  /** Dotted quad. */
  address: string;
}

export interface LargeCommunity {
  globalAdmin: number;
  localData1: number;
  localData2: number;
}

/** MP_REACH_NLRI (RFC 4760 §3) for a plain-prefix family. */
export interface MpReach {
  afi: number;
  safi: number;
  /** Global next hop (IPv4 for AFI 1, IPv6 for AFI 2). */
  nextHop: string;
  /** RFC 2545 §3: second, link-local IPv6 next hop (next-hop length 32). */
  linkLocalNextHop?: string;
  nlri: Prefix[];
}

/** MP_UNREACH_NLRI (RFC 4760 §4). Empty `withdrawn` with no other attributes is End-of-RIB (RFC 4724 §2). */
export interface MpUnreach {
  afi: number;
  safi: number;
  withdrawn: Prefix[];
}

/**
 * An attribute this codec does not understand, kept raw. Decoding keeps only optional
 * transitive ones and sets their Partial bit (RFC 4271 §5, §9.1.3: passed on with P set);
 * optional non-transitive ones are quietly dropped. Re-encoded byte for byte (E bit recomputed).
 */
export interface UnknownAttribute {
  flags: number;
  typeCode: number;
  value: Uint8Array;
}

/** The decoded path attributes of an UPDATE. Absent = not in the message. */
export interface PathAttributes {
  origin?: Origin;
  /** AS_PATH as sent: 4-octet ASNs when the context has `as4`, else 2-octet ones (AS_TRANS = 23456). */
  asPath?: AsPathSegment[];
  /** IPv4 NEXT_HOP (classic NLRI only). */
  nextHop?: string;
  med?: number;
  localPref?: number;
  atomicAggregate?: true;
  aggregator?: Aggregator;
  /** RFC 1997 communities as u32 (high 16 bits AS, low 16 bits value). */
  communities?: number[];
  originatorId?: string;
  clusterList?: string[];
  mpReach?: MpReach;
  mpUnreach?: MpUnreach;
  as4Path?: AsPathSegment[];
  as4Aggregator?: Aggregator;
  largeCommunities?: LargeCommunity[];
  unknown?: UnknownAttribute[];
}

/** A problem in one attribute's value; the caller builds the BgpError (data defaults to the whole attribute). */
export interface AttrProblem {
  subcode: number;
  message: string;
  /** Overrides the descriptor's RFC 7606 action. */
  action?: ErrorAction;
  /** Overrides the NOTIFICATION data (default: the erroneous attribute, RFC 4271 §6.3). */
  data?: Uint8Array;
}

/**
 * One row of the attribute table (BIRD `bgp_attr_table`): expected O/T flags, the RFC 7606
 * action for a malformed value, and the value codec.
 */
export interface AttrDesc {
  typeCode: number;
  name: string;
  /** Expected Optional|Transitive bits. */
  flags: number;
  /** RFC 7606 §7 action when malformed. */
  action: ErrorAction;
  /** Decodes the value b[start, end) into `attrs`. */
  decode(b: Buffer, start: number, end: number, attrs: PathAttributes, ctx: CodecContext): AttrProblem | undefined;
  /** True when `attrs` holds this attribute. */
  has(attrs: PathAttributes): boolean;
  /** Writes the value (header is written by the caller). */
  encode(attrs: PathAttributes, w: Writer, ctx: CodecContext): void;
}

export const WELL_KNOWN = AttrFlag.Transitive;
export const OPTIONAL_TRANSITIVE = AttrFlag.Optional | AttrFlag.Transitive;
export const OPTIONAL_NON_TRANSITIVE = AttrFlag.Optional;
