// Section 8 of `npm run bench`: what a test with interrupt controllers or a
// second vCPU costs beside a plain one, through the full CLI: an empty
// KVMTEST, an .apic test that takes one LAPIC timer interrupt, and a
// .cpus = 2 test that runs a function on CPU 1 once (on_cpu). Marginal
// costs from a small and a large binary of each, so that start-up (and a
// machine's first build, with its vCPU threads) cancels out.
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { median, timeKvmtest } from './measure.js';

export interface InterruptCosts {
  /** Microseconds per test (medians over rounds), and each kind's ratio to a plain test. */
  plain: number;
  timer: number;
  onCpu: number;
  timerRatio: number;
  onCpuRatio: number;
}

const KINDS = {
  plain: { options: '', body: '' },
  timer: {
    options: ', .apic = true',
    body: 'hits = 0; apic_setup_timer(0x40, APIC_LVT_TIMER_ONESHOT); apic_start_timer(1000); while (!hits) safe_halt(); irq_disable(); kassert_eq(hits, 1);',
  },
  onCpu: { options: ', .cpus = 2', body: 'ran = -1; on_cpu(1, on_one, 0); kassert_eq(ran, 1);' },
} as const;

const PRELUDE = `#include <kvmtest.h>
static volatile int hits, ran;
static void tick(isr_regs_t *regs) { (void)regs; hits++; eoi(); }
static void on_one(void *data) { (void)data; ran = smp_id(); }
`;

/** A binary of `count` tests of one kind. */
function suite(root: string, dir: string, kind: keyof typeof KINDS, count: number): string {
  const binary = join(dir, `${kind}-${count}.elf`);
  if (existsSync(binary)) return binary;
  const source = join(dir, `${kind}-${count}.c`);
  const { options, body } = KINDS[kind];
  const tests = Array.from({ length: count }, (_, i) => {
    // The timer test installs its handler in each test: a snapshot restores the IDT.
    const setup = kind === 'timer' ? 'handle_irq(0x40, tick);' : '';
    return `KVMTEST(${kind}_${i}${options}) { ${setup} ${body} }`;
  });
  writeFileSync(source, `${PRELUDE}${tests.join('\n')}\n`);
  timeKvmtest(root, ['cc', '-o', binary, source], dir);
  return binary;
}

export function measureInterrupts(root: string, out: string, small: number, large: number, rounds: number): InterruptCosts {
  const dir = join(out, 'interrupts');
  mkdirSync(dir, { recursive: true });
  const args = ['run', '--reporter', 'json', '--jobs', '1'];
  const binaries = Object.fromEntries(
    (Object.keys(KINDS) as Array<keyof typeof KINDS>).map((kind) => [kind, { small: suite(root, dir, kind, small), large: suite(root, dir, kind, large) }]),
  ) as Record<keyof typeof KINDS, { small: string; large: string }>;
  const perTest = { plain: [] as number[], timer: [] as number[], onCpu: [] as number[], timerRatio: [] as number[], onCpuRatio: [] as number[] };
  for (let round = 0; round < rounds; round++) {
    const cost = (kind: keyof typeof KINDS) =>
      ((timeKvmtest(root, [...args, binaries[kind].large], dir) - timeKvmtest(root, [...args, binaries[kind].small], dir)) * 1e3) / (large - small);
    const plain = cost('plain');
    const timer = cost('timer');
    const onCpu = cost('onCpu');
    perTest.plain.push(plain);
    perTest.timer.push(timer);
    perTest.onCpu.push(onCpu);
    perTest.timerRatio.push(timer / plain);
    perTest.onCpuRatio.push(onCpu / plain);
  }
  return {
    plain: median(perTest.plain),
    timer: median(perTest.timer),
    onCpu: median(perTest.onCpu),
    timerRatio: median(perTest.timerRatio),
    onCpuRatio: median(perTest.onCpuRatio),
  };
}
