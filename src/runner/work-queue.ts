// The indices of the tests still to hand out to workers, lowest first.
// Tests put back after a worker died are lower than any not yet handed out,
// so they go first, in order: the earliest unfinished test is always either
// running or at the front, and the runner's reports, which go out in order,
// never wait on a test that is not coming.
export class WorkQueue {
  private next = 0;
  /** Highest first, so the lowest pops. */
  private readonly returned: number[] = [];

  constructor(private readonly count: number) {}

  get length(): number {
    return this.returned.length + (this.count - this.next);
  }

  /** The index take() would return (only when length > 0). */
  peek(): number {
    return this.returned.length > 0 ? this.returned[this.returned.length - 1]! : this.next;
  }

  take(): number {
    return this.returned.length > 0 ? this.returned.pop()! : this.next++;
  }

  /** Indices handed out earlier that must run again. */
  putBack(indices: readonly number[]): void {
    this.returned.push(...indices);
    this.returned.sort((a, b) => b - a);
  }
}
