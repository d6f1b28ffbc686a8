// Mirror mode's costs (section 7 of `npm run bench`): one run of a function
// of a shared object on a kept machine, beside one run of the same code as
// an image; and the first touch of a page of the process, which costs a
// #PF exit, a look at /proc/self/maps and the page tables of a 2 MiB chunk.
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { openMachine, type GuestMachine } from '../src/open-machine.js';
import { median } from './measure.js';

const SOURCE = `
#include <stdint.h>
uint64_t nothing(void) { return 0; }
/* Reads one byte every \`stride\` bytes of [p, p + n * stride). */
uint64_t touch(const volatile uint8_t *p, uint64_t n, uint64_t stride)
{
	uint64_t sum = 0;
	for (uint64_t i = 0; i < n; i++)
		sum += p[i * stride];
	return sum;
}
`;

/** `xor eax, eax; ret`: what nothing() compiles to, as an image. */
const IMAGE_NOTHING = Uint8Array.of(0x31, 0xc0, 0xc3);
const CHUNK = 2 << 20;
const CHUNKS = 32;

export interface MirrorCosts {
  /** Microseconds per run() of an image's function that returns. */
  image: number;
  /** Microseconds per run() of a mirrored function that returns (the library mapped before the run). */
  mirror: number;
  /** Faults and pages mapped in one such run. */
  faultsPerRun: number;
  pagesPerRun: number;
  /** Microseconds per first touch of a 2 MiB chunk of the process (a page fault served by mapping it). */
  firstTouch: number;
  /** Microseconds per touch of a further page of a chunk already mapped in the run (no fault). */
  laterTouch: number;
  /** Microseconds more for the first touch of a chunk the machine has never had: its memory slot. */
  newSlot: number;
}

async function perRun(machine: GuestMachine, iterations: number, args: Array<number | ArrayBufferView> = []): Promise<number> {
  const start = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) {
    const r = await machine.run({ args });
    if (r.outcome !== 'returned') throw new Error(`the benchmark guest ended as ${r.outcome}: ${r.message}`);
  }
  return Number(process.hrtime.bigint() - start) / 1e3 / iterations;
}

export async function measureMirror(out: string, rounds: number): Promise<MirrorCosts> {
  const source = join(out, 'mirror-bench.c');
  const library = join(out, 'mirror-bench.so');
  writeFileSync(source, SOURCE);
  const built = spawnSync('gcc', ['-O1', '-mgeneral-regs-only', '-fPIC', '-shared', '-o', library, source], { encoding: 'utf8' });
  if (built.status !== 0) throw new Error(`building ${library} failed:\n${built.stderr}`);

  const image = openMachine({ image: { flat: IMAGE_NOTHING, loadAddress: 0x200000 } });
  const mirror = openMachine({ mirror: { library }, entry: 'nothing' });
  const toucher = openMachine({ mirror: { library }, entry: 'touch' });
  // 2 MiB-aligned within the Buffer, so that each touch lands in a chunk of its own.
  const memory = Buffer.alloc((CHUNKS + 1) * CHUNK, 1);
  const sample = await mirror.run();
  const costs = { image: [] as number[], mirror: [] as number[], first: [] as number[], later: [] as number[] };
  await perRun(image, 200);
  await perRun(mirror, 200);
  const slots: number[] = [];
  for (let round = 0; round < rounds; round++) {
    // A new machine has no slots: its first run of CHUNKS touches makes them; a later run only maps.
    const fresh = openMachine({ mirror: { library }, entry: 'touch' });
    await perRun(fresh, 1, [memory, 0, CHUNK]);
    const withSlots = await perRun(fresh, 1, [memory, CHUNKS, CHUNK]);
    const without = await perRun(fresh, 5, [memory, CHUNKS, CHUNK]);
    fresh.close();
    slots.push((withSlots - without) / CHUNKS);
    costs.image.push(await perRun(image, 1000));
    costs.mirror.push(await perRun(mirror, 1000));
    const none = await perRun(toucher, 50, [memory, 0, CHUNK]);
    const chunks = await perRun(toucher, 50, [memory, CHUNKS, CHUNK]);
    const pages = await perRun(toucher, 50, [memory, 512, 4096]);
    costs.first.push((chunks - none) / CHUNKS);
    // 512 pages: about two chunks (the Buffer need not start on a chunk boundary), the rest without a fault.
    costs.later.push((pages - none - 2 * ((chunks - none) / CHUNKS)) / 510);
  }
  image.close();
  mirror.close();
  toucher.close();
  return {
    image: median(costs.image),
    mirror: median(costs.mirror),
    faultsPerRun: sample.mirror?.faults ?? 0,
    pagesPerRun: sample.mirror?.pagesMapped ?? 0,
    firstTouch: median(costs.first),
    laterTouch: median(costs.later),
    newSlot: median(slots),
  };
}
