// What the benchmark sections share: the median of a round's figures, and
// the wall-clock time of one `kvmtest` command of this checkout.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

/** Milliseconds `kvmtest ARGS` took in `cwd`; throws with its output if it failed. */
export function timeKvmtest(root: string, args: string[], cwd: string): number {
  const start = process.hrtime.bigint();
  const result = spawnSync('node', [join(root, 'bin', 'kvmtest.js'), ...args], { cwd, encoding: 'utf8', maxBuffer: 256 << 20 });
  const elapsed = Number(process.hrtime.bigint() - start) / 1e6;
  if (result.status !== 0) throw new Error(`kvmtest ${args.join(' ')} failed:\n${result.stderr}${result.stdout.slice(0, 2000)}`);
  return elapsed;
}
