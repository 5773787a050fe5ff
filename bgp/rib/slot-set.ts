/**
 * A set of small integers (peer slots) in as little memory as the common case allows: a plain
 * number used as a bit mask while every member is below 30 (a V8 small integer, stored inline in
 * the object that holds it), an array of 30-bit words beyond that. Every Loc-RIB entry has one
 * (which peers have the prefix from us), so this is where a per-peer array per prefix would
 * otherwise cost ~100 bytes each.
 */

export type SlotSet = number | number[];

const BITS = 30;

export const EMPTY_SLOTS: SlotSet = 0;

export function hasSlot(set: SlotSet, slot: number): boolean {
  if (typeof set === 'number') return slot < BITS && (set & (1 << slot)) !== 0;
  const w = set[(slot / BITS) | 0];
  return w !== undefined && (w & (1 << (slot % BITS))) !== 0;
}

/** The set with `slot` added (the array form is changed in place and returned). */
export function addSlot(set: SlotSet, slot: number): SlotSet {
  if (typeof set === 'number') {
    if (slot < BITS) return set | (1 << slot);
    set = [set];
  }
  const i = (slot / BITS) | 0;
  while (set.length <= i) set.push(0);
  set[i] = (set[i] as number) | (1 << (slot % BITS));
  return set;
}

/** The set without `slot` (the array form is changed in place and returned). */
export function removeSlot(set: SlotSet, slot: number): SlotSet {
  if (typeof set === 'number') return slot < BITS ? set & ~(1 << slot) : set;
  const i = (slot / BITS) | 0;
  if (i < set.length) set[i] = (set[i] as number) & ~(1 << (slot % BITS));
  return set;
}

export function isEmptySlots(set: SlotSet): boolean {
  if (typeof set === 'number') return set === 0;
  for (const w of set) if (w !== 0) return false;
  return true;
}

/** The members, ascending. */
export function slotsOf(set: SlotSet): number[] {
  const out: number[] = [];
  const words = typeof set === 'number' ? [set] : set;
  words.forEach((w, i) => {
    for (let b = 0; b < BITS; b++) if ((w & (1 << b)) !== 0) out.push(i * BITS + b);
  });
  return out;
}
