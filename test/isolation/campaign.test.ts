// The destructive campaign (test/isolation/campaign/): hundreds of random
// hostile tests, each followed by canaries, in one worker (--jobs 1) under
// snapshot isolation and under --isolation vm. Every canary must get its
// own verdict in both modes, and every destructive test must end the same
// way (status, outcome, fault vector) in both: --isolation vm is the
// reference.
//
//   KVMTEST_CAMPAIGN_SEED       the generator's seed (default: a random one, printed)
//   KVMTEST_CAMPAIGN_TESTS      destructive tests (default 200)
//   KVMTEST_CAMPAIGN_ISOLATION  the mode under test (default snapshot; vm
//                               compares two fresh-VM runs: any breach is then
//                               the campaign's own fault)
//   KVMTEST_CAMPAIGN_DIR        keep the sources, binaries, JSON reports and the full
//                               lists of breaches there
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { JsonReport } from '../../src/report/json.js';
import { ISOLATION_MODES, type Isolation } from '../../src/runner/executor.js';
import { guestSkipReason, guestTest } from '../helpers/kvm.js';
import { randomSeed } from './campaign/prng.js';
import { prepareCampaign, runReport, type Prepared } from './campaign/run.js';
import {
  canaryBreaches,
  describeCanaryBreaches,
  describeDivergences,
  divergences,
  LISTED,
  testsByName,
  verdictKey,
} from './campaign/verdicts.js';

const DEFAULT_TESTS = 200;

function envNumber(name: string, fallback: () => number, max: number): number {
  const text = process.env[name];
  if (text === undefined || text === '') return fallback();
  const value = Number(text);
  if (!Number.isInteger(value) || value < 0 || value > max) throw new Error(`${name} must be a whole number from 0 to ${max} (got "${text}")`);
  return value;
}

const seed = envNumber('KVMTEST_CAMPAIGN_SEED', randomSeed, 2 ** 32 - 1);
const size = Math.max(1, envNumber('KVMTEST_CAMPAIGN_TESTS', () => DEFAULT_TESTS, 1_000_000));
const subjectMode = (process.env['KVMTEST_CAMPAIGN_ISOLATION'] || 'snapshot') as Isolation;
if (!ISOLATION_MODES.includes(subjectMode)) throw new Error(`KVMTEST_CAMPAIGN_ISOLATION must be one of ${ISOLATION_MODES.join(', ')}`);
const REFERENCE: Isolation = 'vm';

const reproduce =
  `npm run build && KVMTEST_CAMPAIGN_SEED=${seed} KVMTEST_CAMPAIGN_TESTS=${size}` +
  `${subjectMode === 'snapshot' ? '' : ` KVMTEST_CAMPAIGN_ISOLATION=${subjectMode}`} node --test dist/test/isolation/campaign.test.js`;
const banner = `campaign seed ${seed}, ${size} destructive tests (reproduce: ${reproduce})`;
const keepDir = process.env['KVMTEST_CAMPAIGN_DIR'] || undefined;

/**
 * Fails with the first breaches listed in full (`list(limit)`); with
 * KVMTEST_CAMPAIGN_DIR, the whole list goes to a file there too.
 */
function failWith(headline: string, list: (limit: number) => string, file: string): never {
  let where = ` (KVMTEST_CAMPAIGN_DIR=DIR keeps the full list in DIR/${file})`;
  if (keepDir) {
    writeFileSync(join(prepared!.dir, file), `${banner}\n${headline}\n\n${list(Infinity)}\n`);
    where = ` (the full list: ${join(prepared!.dir, file)})`;
  }
  const listed = list(LISTED);
  assert.fail(`${banner}\n${headline}${listed ? `${where}:\n\n${listed}` : ''}`);
}

let prepared: Prepared | undefined;
const reports = new Map<'subject' | 'reference', JsonReport>();
let elapsed = '';

describe(`destructive campaign, seed ${seed}, ${size} destructive tests`, () => {
  before(
    async () => {
      if (guestSkipReason()) return;
      const started = performance.now();
      prepared = await prepareCampaign(seed, size, keepDir);
      // One after the other: side by side they are no faster here, and timing must not differ between them.
      reports.set('reference', await runReport(prepared.elf, REFERENCE));
      reports.set('subject', await runReport(prepared.elf, subjectMode));
      if (keepDir) {
        writeFileSync(join(prepared.dir, `report-${REFERENCE}-reference.json`), JSON.stringify(reports.get('reference')));
        writeFileSync(join(prepared.dir, `report-${subjectMode}.json`), JSON.stringify(reports.get('subject')));
      }
      elapsed = `${((performance.now() - started) / 1000).toFixed(1)} s`;
    },
    { timeout: 120_000 + 500 * size },
  );

  const diagnose = (t: { diagnostic(message: string): void }) => {
    t.diagnostic(banner);
    t.diagnostic(
      `${prepared!.campaign.groups.reduce((n, g) => n + 1 + g.canaries.length, 0)} tests per run, both runs in ${elapsed}; ` +
        `${prepared!.baseline.msrs.size} MSRs compared; left out as unstable: ${prepared!.baseline.unstable.join(', ') || 'nothing'}` +
        `${keepDir ? `; files in ${prepared!.dir}` : ''}`,
    );
  };

  const breachesIn = (which: 'subject' | 'reference') => {
    const tests = testsByName(reports.get(which)!);
    return { tests, breaches: canaryBreaches(prepared!.campaign, tests) };
  };

  test(`every canary gets its verdict under --isolation ${REFERENCE} (the reference run)`, guestTest(), (t) => {
    diagnose(t);
    const { tests, breaches } = breachesIn('reference');
    if (breaches.length > 0) {
      failWith(
        `on fresh VMs (--isolation ${REFERENCE}), ${breaches.length} canaries did not get their verdicts`,
        (limit) => describeCanaryBreaches(prepared!.campaign, breaches, tests, `--isolation ${REFERENCE}`, limit),
        `breaches-${REFERENCE}-reference.txt`,
      );
    }
  });

  test(`every canary gets its verdict under --isolation ${subjectMode} (the run under test)`, guestTest(), (t) => {
    diagnose(t);
    const { tests, breaches } = breachesIn('subject');
    // Canaries that fail the same way on fresh VMs are the reference run's to list; here, the others.
    const reference = breachesIn('reference');
    const sameInReference = new Set(
      reference.breaches
        .filter((b) => verdictKey(reference.tests.get(b.canary.name)) === verdictKey(tests.get(b.canary.name)))
        .map((b) => b.canary.name),
    );
    const own = breaches.filter((b) => !sameInReference.has(b.canary.name));
    if (breaches.length > 0) {
      failWith(
        `with --isolation ${subjectMode}, ${breaches.length} canaries did not get their verdicts: ` +
          `${own.length} of them only in this run or otherwise than on fresh VMs${own.length > 0 ? ' (listed)' : ''}, ` +
          `${breaches.length - own.length} the same way on fresh VMs (see the reference run)`,
        (limit) => describeCanaryBreaches(prepared!.campaign, own, tests, `--isolation ${subjectMode}`, limit, reference.tests),
        `breaches-${subjectMode}.txt`,
      );
    }
  });

  test(`each destructive test ends the same under --isolation ${subjectMode} as in a fresh VM`, guestTest(), (t) => {
    diagnose(t);
    const subject = testsByName(reports.get('subject')!);
    const reference = testsByName(reports.get('reference')!);
    const diverged = divergences(prepared!.campaign, subject, reference);
    if (diverged.length > 0) {
      failWith(
        `${diverged.length} destructive tests ended differently under --isolation ${subjectMode} and on a fresh VM (status, outcome, fault vector)`,
        (limit) => describeDivergences(diverged, `--isolation ${subjectMode}`, `--isolation ${REFERENCE} (reference)`, limit),
        'divergences.txt',
      );
    }
  });
});
