/**
 * Unrecognised attributes (RFC 4271 §5 and §9.1.3). Well-known (O=0) -> 3/2 and session reset
 * (RFC 4271 §6.3; RFC 7606 does not relax it; GoBGP and FRR do the same). Optional transitive
 * -> kept raw with the Partial bit set, so re-encoding passes it on marked partial. Optional
 * non-transitive -> quietly ignored.
 */
import { AttrFlag, type UnknownAttribute } from './types.js';

export type UnknownVerdict = 'keep' | 'drop' | 'unrecognized-well-known';

export function classifyUnknown(flags: number): UnknownVerdict {
  if ((flags & AttrFlag.Optional) === 0) return 'unrecognized-well-known';
  return (flags & AttrFlag.Transitive) !== 0 ? 'keep' : 'drop';
}

/** The kept form: Partial set, Extended Length cleared (the encoder recomputes it). */
export function keepUnknown(flags: number, typeCode: number, value: Uint8Array): UnknownAttribute {
  return { flags: (flags | AttrFlag.Partial) & ~AttrFlag.ExtendedLength & 0xf0, typeCode, value };
}
