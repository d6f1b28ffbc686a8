// Small text helpers shared by the reporters: how a result is named, how
// hardware values and times are shown, how guest text is tidied.
import type { TestResult } from '../runner/types.js';

/** 0x-prefixed lowercase hex, as the rest of kvmtest prints addresses. */
export function hex(value: bigint | number): string {
  return `0x${value.toString(16)}`;
}

/** Milliseconds as seconds with a fixed number of decimals ("0.02"). */
export function seconds(ms: number, decimals: number): string {
  return (Math.max(0, ms) / 1000).toFixed(decimals);
}

/**
 * Serial consoles write "\r\n"; human-facing reports show plain line ends.
 * (The JSON report keeps the guest's bytes as they were.)
 */
export function normalizeNewlines(text: string): string {
  return text.replace(/\r\n/g, '\n');
}

/** The text up to the first line break (a reason's headline). */
export function firstLine(text: string): string {
  const end = text.search(/\r?\n|\r/);
  return end === -1 ? text : text.slice(0, end);
}

/** Line breaks folded to spaces, for places that hold exactly one line. */
export function oneLine(text: string): string {
  return text.replace(/\s*(?:\r\n|\r|\n)\s*/g, ' ').trim();
}

/** "binary::name" when the run spans several binaries, else just the name. */
export function qualifiedName(result: Pick<TestResult, 'name' | 'binary'>, multipleBinaries: boolean): string {
  return multipleBinaries ? `${result.binary}::${result.name}` : result.name;
}

/** True when the given binaries name more than one distinct binary. */
export function spansBinaries(binaries: Iterable<string>): boolean {
  return new Set(binaries).size > 1;
}

/**
 * What to say about a failed test: its message, or (when the runner gave
 * none) its outcome, so a failure is never silent.
 */
export function failureReason(result: TestResult): string {
  if (result.message !== undefined && result.message.trim() !== '') return result.message;
  return result.outcome !== undefined ? `test failed (outcome: ${result.outcome})` : 'test failed';
}
