// The campaign's random numbers: mulberry32, a 32-bit generator small
// enough to need no dependency, so that one seed gives the same campaign on
// every machine and every Node version.

export interface Rng {
  /** A uniform 32-bit unsigned integer. */
  u32(): number;
  /** A uniform integer in [lo, hi] (inclusive; both at most 2^32 apart). */
  int(lo: number, hi: number): number;
  /** True with probability p. */
  chance(p: number): boolean;
  /** A uniform 64-bit value. */
  u64(): bigint;
  pick<T>(items: readonly T[]): T;
  /** An item drawn with probability proportional to its weight. */
  weighted<T>(items: ReadonlyArray<readonly [weight: number, item: T]>): T;
  shuffle<T>(items: readonly T[]): T[];
}

export function mulberry32(seed: number): Rng {
  let state = seed >>> 0;
  const u32 = (): number => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
  // Multiplying by the range (not taking a remainder) keeps small ranges unbiased enough here.
  const int = (lo: number, hi: number) => lo + Math.floor((u32() / 2 ** 32) * (hi - lo + 1));
  return {
    u32,
    int,
    chance: (p) => u32() / 2 ** 32 < p,
    u64: () => (BigInt(u32()) << 32n) | BigInt(u32()),
    pick: (items) => {
      if (items.length === 0) throw new Error('pick from an empty list');
      return items[int(0, items.length - 1)]!;
    },
    weighted: (items) => {
      const total = items.reduce((sum, [w]) => sum + w, 0);
      let at = (u32() / 2 ** 32) * total;
      for (const [w, item] of items) {
        if (at < w) return item;
        at -= w;
      }
      return items[items.length - 1]![1];
    },
    shuffle: (items) => {
      const out = [...items];
      for (let i = out.length - 1; i > 0; i--) {
        const j = int(0, i);
        [out[i], out[j]] = [out[j]!, out[i]!];
      }
      return out;
    },
  };
}

/** A fresh seed for a run that was not given one. */
export function randomSeed(): number {
  return Math.floor(Math.random() * 2 ** 32) >>> 0;
}
