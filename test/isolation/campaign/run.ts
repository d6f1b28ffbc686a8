// Builds and runs a campaign: the probe under --isolation vm, then the
// generated campaign with its results, through the real CLI (`kvmtest run
// --jobs 1`, so that every test runs in one worker, one after another).
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { compileTests } from '../../../src/image/toolchain.js';
import type { JsonReport } from '../../../src/report/json.js';
import type { Isolation } from '../../../src/runner/executor.js';
import { FIXTURES, jsonReport, runCli, scratchDir } from '../helpers.js';
import { baselineTables, parseBaseline, PROBE_TESTS, probeSource, type Baseline } from './baseline.js';
import { generateCampaign, type Campaign } from './generate.js';

export const CAMPAIGN_FILE = 'campaign.c';

export interface Prepared {
  campaign: Campaign;
  baseline: Baseline;
  elf: string;
  dir: string;
}

function build(dir: string, name: string, source: string): string {
  const c = join(dir, `${name}.c`);
  const elf = join(dir, `${name}.elf`);
  writeFileSync(c, source);
  // --allow-simd, the build of a user who tests SSE code (the attacks' movdqu is inline assembly and
  // needs no flag); campaign.h keeps the compiler's own code SSE-free all the same.
  // -O1 -g0: half the build time of kvmtest cc's -O2 -g, and the campaign needs neither.
  const result = compileTests(['--allow-simd', '-O1', '-g0', `-I${FIXTURES}`, '-o', elf, c]);
  if (result.status !== 0) throw new Error(`kvmtest cc ${c} failed with status ${result.status}:\n${result.stderr}`);
  return elf;
}

/** Runs `kvmtest run --jobs N --isolation MODE --reporter json ELF`; the report, whatever the tests did. */
export async function runReport(elf: string, isolation: Isolation, jobs = 1): Promise<JsonReport> {
  return jsonReport(await runCli(['--jobs', String(jobs), '--isolation', isolation, '--reporter', 'json', elf]));
}

/**
 * Probes a fresh machine, then generates and builds the campaign with what
 * it found. `dir` keeps the files (probe.c, campaign.c, their ELFs);
 * without it they go to this process's scratch directory.
 */
export async function prepareCampaign(seed: number, tests: number, dir?: string): Promise<Prepared> {
  const where = dir ?? join(scratchDir(), `campaign-${seed}`);
  mkdirSync(where, { recursive: true });
  const probeElf = build(where, 'probe', probeSource());
  // --jobs 2: each probe test on a fresh VM in its own worker, side by side.
  const probe = await runReport(probeElf, 'vm', PROBE_TESTS.length);
  const outputs = PROBE_TESTS.map((name) => {
    const t = probe.tests.find((x) => x.name === name);
    if (!t || t.status !== 'passed') throw new Error(`the campaign's probe ${name} did not pass: ${JSON.stringify(t)}`);
    return t.output;
  });
  const baseline = parseBaseline(outputs);
  const campaign = generateCampaign({ seed, tests, baselineTables: baselineTables(baseline, outputs[0]!), fileName: CAMPAIGN_FILE });
  const elf = build(where, 'campaign', campaign.source);
  return { campaign, baseline, elf, dir: where };
}
