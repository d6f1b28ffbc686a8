// How much of this host a run may ask for. Each worker process is a Node
// process with a VM (about 80 MB resident), so --jobs is bounded by the CPUs
// that can keep workers busy and by the memory they need; shard numbers are
// bounded to keep them exact integers and the arithmetic on them sane.
import { availableParallelism, totalmem } from 'node:os';

/** More workers than this per CPU only wait for one. */
export const WORKERS_PER_CPU = 4;
/** Memory to count for each worker: its resident size, with room for big tests. */
export const MEMORY_PER_WORKER = 256 * 2 ** 20;
export const MAX_SHARDS = 1_000_000;

export interface JobLimit {
  /** The most worker processes a run may have here (at least 1). */
  max: number;
  /** Why, with this host's numbers. */
  reason: string;
}

export function jobLimit(cpus: number = availableParallelism(), memoryBytes: number = totalmem()): JobLimit {
  const byCpu = WORKERS_PER_CPU * cpus;
  const byMemory = Math.floor(memoryBytes / MEMORY_PER_WORKER);
  const max = Math.max(1, Math.min(byCpu, byMemory));
  const gib = (memoryBytes / 2 ** 30).toFixed(1);
  const reason =
    `${WORKERS_PER_CPU} worker processes per CPU (${cpus} CPU${cpus === 1 ? '' : 's'}: ${byCpu}) ` +
    `and ${MEMORY_PER_WORKER / 2 ** 20} MiB of memory for each (${gib} GiB: ${byMemory}), whichever is fewer`;
  return { max, reason };
}
