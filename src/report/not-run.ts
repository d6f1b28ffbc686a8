// Which announced tests got no result (--bail stopped the run, or it was
// interrupted), for the reports that list them. Results come in the order
// of the test list announced at the start (the Reporter contract), so one
// cursor walking that list finds them: the tests it steps over before a
// result, and those after the last. Nothing per result is kept, so memory
// does not grow with the run.
import type { RunSummary, TestCase, TestResult } from '../runner/types.js';
import { firstLine } from './text.js';

/** Positions [from, to) in the announced test list. */
export interface ListRange {
  from: number;
  to: number;
}

export class NotRunTracker {
  private tests: readonly TestCase[] = [];
  /** The first test of the list not yet matched to a result or stepped over. */
  private next = 0;

  /** The announced list (onRunStart). Without it, no test counts as not run. */
  start(tests: readonly TestCase[]): void {
    this.tests = tests;
    this.next = 0;
  }

  test(position: number): TestCase {
    return this.tests[position]!;
  }

  /**
   * The tests before `result` that got none. A result that is not in the
   * rest of the list (a caller that announced another list) steps over
   * nothing.
   */
  before(result: Pick<TestResult, 'name' | 'binary'>): ListRange | undefined {
    for (let i = this.next; i < this.tests.length; i++) {
      const t = this.tests[i]!;
      if (t.name !== result.name || t.binary !== result.binary) continue;
      const from = this.next;
      this.next = i + 1;
      return i > from ? { from, to: i } : undefined;
    }
    return undefined;
  }

  /** The tests after the last result: none of them got one. */
  rest(): ListRange | undefined {
    const from = this.next;
    this.next = this.tests.length;
    return this.tests.length > from ? { from, to: this.tests.length } : undefined;
  }
}

/** Why the tests without a result have none, as the reports say it: "--bail stopped the run". */
export function notRunReason(summary: Pick<RunSummary, 'incomplete'>): string {
  // A run that stopped for another reason says why; otherwise only --bail leaves tests out.
  return summary.incomplete === undefined ? '--bail stopped the run' : firstLine(summary.incomplete);
}
