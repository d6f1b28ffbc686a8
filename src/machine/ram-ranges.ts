// The one rule for RAM ranges, wherever they come from (a test record, the
// library's options, later a TypeScript test): [from, to) with to above
// from, both ends 4 KiB-aligned, clear of the engine's first megabyte, and
// not overlapping each other. The machine's placement adds what depends on
// the host (the physical address width, the memory limit).
import { LAYOUT } from './layout.js';

const PAGE_MASK = 0xfffn;
const hex = (n: bigint) => `0x${n.toString(16)}`;

/** "RAM range [0x10000000, 0x10001000)" */
export function describeRamRange(from: bigint, to: bigint): string {
  return `RAM range [${hex(from)}, ${hex(to)})`;
}

/**
 * What is wrong with the range [from, to) given after `earlier` ones, or
 * undefined. The text follows the range's description: "RAM range [...): ...".
 */
export function ramRangeProblem(from: bigint, to: bigint, earlier: ReadonlyArray<readonly [bigint, bigint]> = []): string | undefined {
  if (to <= from) return ': the end must be above the start (ranges are { from, to })';
  if ((from & PAGE_MASK) !== 0n || (to & PAGE_MASK) !== 0n) return ': both ends must be multiples of 4 KiB (0x1000)';
  if (from < LAYOUT.engineEnd) return ` overlaps the first megabyte, which kvmtest reserves (0x0-${hex(LAYOUT.engineEnd)})`;
  const clash = earlier.find(([f, t]) => from < t && f < to);
  if (clash) return ` overlaps ${describeRamRange(clash[0], clash[1])}`;
  return undefined;
}
