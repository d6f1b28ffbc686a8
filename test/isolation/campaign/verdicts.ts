// Judges a campaign run: each canary against the verdict it must get, each
// destructive test against its result under --isolation vm (the
// reference), and lists every breach with the destructive test's source.
import type { JsonReport, JsonTest } from '../../../src/report/json.js';
import type { Canary, Campaign, Group } from './generate.js';

/** Outcomes a test that never halts, hangs or asserts must not get, whatever its page tables. */
const NOT_ITS_OWN = ['halted', 'timeout', 'triple-fault', 'assert-failed', 'panicked'];

/** What the canary must do, in words that follow "must". */
export function expectation(canary: Canary, fileName: string): string {
  const at = `${fileName}:${canary.line}`;
  switch (canary.kind) {
    case 'state':
      return 'pass: every register, MSR and memory region as on a fresh machine';
    case 'ud':
      return 'pass: ktry(ud2) returns 6, then its own uncaught #UD';
    case 'assert':
      return `fail as assert-failed at ${at}`;
    case 'gp_returns':
      return 'fail as returned (it expects #GP and has an empty body)';
    case 'print':
      return `pass with output exactly ${JSON.stringify(`${canary.text}\n`)}`;
    case 'own_pt_return':
      return `pass, or fail saying why, but not as ${NOT_ITS_OWN.join('/')} (it loads its own page tables and returns)`;
    case 'own_pt_halt':
      return `fail, but not as ${NOT_ITS_OWN.join('/')} (it expects to halt, loads its own page tables and returns)`;
    case 'own_pt_ud':
      return `pass with #UD, or fail saying why, but not as returned/${NOT_ITS_OWN.join('/')} (its own page tables, then ud2)`;
    case 'own_pt_assert':
      return `fail as assert-failed at ${at} (on its own page tables)`;
  }
}

/** Undefined when the canary got its verdict; otherwise what it got instead. */
export function canaryProblem(canary: Canary, test: JsonTest | undefined, fileName: string): string | undefined {
  if (!test) return 'it has no result';
  const ok = (() => {
    switch (canary.kind) {
      case 'state':
        return test.status === 'passed';
      case 'ud':
        return (
          test.status === 'passed' &&
          test.outcome === 'fault' &&
          test.fault?.vector === 6 &&
          test.fault.location.startsWith(`kt_test_${canary.name}+`)
        );
      case 'assert':
      case 'own_pt_assert':
        return (
          test.status === 'failed' &&
          test.outcome === 'assert-failed' &&
          (test.message ?? '').includes(`${fileName}:${canary.line}:`) &&
          (test.message ?? '').includes(canary.text!)
        );
      case 'gp_returns':
        return test.status === 'failed' && test.outcome === 'returned';
      case 'print':
        return test.status === 'passed' && test.outcome === 'returned' && test.output === `${canary.text}\n`;
      case 'own_pt_return':
        return !NOT_ITS_OWN.includes(test.outcome ?? '');
      case 'own_pt_halt':
        return test.status === 'failed' && !NOT_ITS_OWN.includes(test.outcome ?? '');
      case 'own_pt_ud':
        return (
          !NOT_ITS_OWN.includes(test.outcome ?? '') &&
          test.outcome !== 'returned' &&
          (test.outcome !== 'fault' || test.fault?.vector === 6)
        );
    }
  })();
  return ok ? undefined : describe(test);
}

/** "failed fault #GP: message; output: ..." */
export function describe(test: JsonTest): string {
  const fault = test.fault ? ` ${test.fault.name}` : '';
  const message = test.message ? `: ${oneLine(test.message, 300)}` : '';
  const output = test.output ? `; output: ${oneLine(test.output, 600)}` : '';
  return `${test.status} ${test.outcome}${fault}${message}${output}`;
}

/** On one line, control characters escaped (a test's output may be any bytes), cut at max. */
const oneLine = (text: string, max: number) => {
  const flat = text
    .replace(/\n+$/, '')
    .replace(/\n/g, ' | ')
    .replace(/[\x00-\x1f\x7f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
  return flat.length > max ? `${flat.slice(0, max)}...` : flat;
};

/** What the comparison between the modes looks at: status, outcome and fault vector. */
export const verdictKey = (t: JsonTest | undefined) => (t ? `${t.status} ${t.outcome}${t.fault ? ` vector ${t.fault.vector}` : ''}` : 'no result');

export interface CanaryBreach {
  group: Group;
  canary: Canary;
  got: string;
  /**
   * For a state canary whose every difference the previous group's state
   * canary saw too: the group where they first appeared. Such state lingers
   * (until the machine is replaced) and is that group's destructive test's doing.
   */
  since?: Group;
  /** For a state canary: the differences it is the first to find. */
  fresh?: string[];
}

const STATE_LINE = /^state: (.*)$/gm;

export function canaryBreaches(campaign: Campaign, tests: ReadonlyMap<string, JsonTest>): CanaryBreach[] {
  const breaches: CanaryBreach[] = [];
  // The differences the last state canary listed, each with the group where it first appeared.
  let seen = new Map<string, Group>();
  for (const group of campaign.groups) {
    for (const canary of group.canaries) {
      const test = tests.get(canary.name);
      const got = canaryProblem(canary, test, campaign.fileName);
      if (canary.kind === 'state') {
        const now = new Map<string, Group>();
        for (const m of (test?.output ?? '').matchAll(STATE_LINE)) now.set(m[1]!, seen.get(m[1]!) ?? group);
        seen = now;
        if (got !== undefined) {
          const fresh = [...now].filter(([, origin]) => origin === group).map(([line]) => line);
          const origins = new Set(now.values());
          const since = origins.size === 1 && !origins.has(group) ? [...origins][0] : undefined;
          breaches.push(since ? { group, canary, got, since, fresh } : { group, canary, got, fresh });
        }
        continue;
      }
      if (got !== undefined) breaches.push({ group, canary, got });
    }
  }
  return breaches;
}

export interface Divergence {
  group: Group;
  subject: JsonTest | undefined;
  reference: JsonTest | undefined;
}

/** Destructive tests that did not end the same way in both runs. */
export function divergences(campaign: Campaign, subject: ReadonlyMap<string, JsonTest>, reference: ReadonlyMap<string, JsonTest>): Divergence[] {
  return campaign.groups
    .map((group) => ({ group, subject: subject.get(group.destroy), reference: reference.get(group.destroy) }))
    .filter((d) => verdictKey(d.subject) !== verdictKey(d.reference));
}

export function testsByName(report: JsonReport): Map<string, JsonTest> {
  return new Map(report.tests.map((t) => [t.name, t]));
}

/** Destructive tests listed with their source in a failure message; the rest one line each, up to BRIEFLY. */
export const LISTED = 15;
const BRIEFLY = 200;

const indent = (text: string, by: string) => text.split('\n').map((l) => by + l).join('\n');

/**
 * Canary breaches grouped by the destructive test before them: its source,
 * how it ended, and each canary that noticed (with what it got); past
 * `limit` groups, one line per group. Then counts by canary kind and by the
 * state the state canaries found changed.
 */
export function describeCanaryBreaches(
  campaign: Campaign,
  breaches: readonly CanaryBreach[],
  tests: ReadonlyMap<string, JsonTest>,
  mode: string,
  limit = LISTED,
  reference?: ReadonlyMap<string, JsonTest>,
): string {
  // A canary that fails on a fresh VM too, but otherwise: what it got there.
  const there = (c: Canary) => {
    const got = reference && canaryProblem(c, reference.get(c.name), campaign.fileName);
    return got ? `\n    on a fresh VM it got ${got}` : '';
  };
  const byGroup = new Map<Group, CanaryBreach[]>();
  for (const b of breaches) if (!b.since) byGroup.set(b.group, [...(byGroup.get(b.group) ?? []), b]);
  const parts: string[] = [];
  const brief: string[] = [];
  for (const [group, list] of byGroup) {
    if (parts.length >= limit) {
      brief.push(`after ${group.destroy}: ${list.map((b) => b.canary.name).join(', ')}`);
      continue;
    }
    const destroy = tests.get(group.destroy);
    parts.push(
      [
        `after ${group.destroy} (${mode}: ${destroy ? describe(destroy) : 'no result'}):`,
        indent(group.source, '    '),
        ...list.map((b) => `  ${b.canary.name} must ${expectation(b.canary, campaign.fileName)};\n    got ${b.got}${there(b.canary)}`),
      ].join('\n'),
    );
  }
  if (brief.length > BRIEFLY) brief.splice(BRIEFLY, Infinity, `... and after ${brief.length - BRIEFLY} more destructive tests`);
  if (brief.length > 0) parts.push(`and, without their sources:\n${brief.map((l) => `  ${l}`).join('\n')}`);
  const lingering = breaches.filter((b) => b.since);
  if (lingering.length > 0) {
    const since = [...new Set(lingering.map((b) => b.since!.destroy))];
    parts.push(
      `${lingering.length} more state canaries found only what an earlier group's state canary found, left by: ${since.join(', ')}`,
    );
  }
  if (breaches.length > 0) parts.push(summary(breaches));
  return parts.join('\n\n');
}

function summary(breaches: readonly CanaryBreach[]): string {
  const kinds = new Map<string, number>();
  const state = new Map<string, number>();
  for (const b of breaches) {
    const kind = b.canary.kind + (b.canary.variant === undefined ? '' : `_v${b.canary.variant}`);
    kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
    if (b.canary.kind !== 'state') continue;
    for (const line of b.fresh ?? []) {
      const what = line.replace(/ is .*$/, '').replace(/ at 0x[0-9a-f]+$/, ' (somewhere)');
      state.set(what, (state.get(what) ?? 0) + 1);
    }
  }
  const list = (m: Map<string, number>) => [...m].sort((a, b) => b[1] - a[1]).map(([k, n]) => `${k} ${n}`).join(', ');
  let text = `breaches by canary: ${list(kinds)}`;
  if (state.size > 0) text += `\nstate found changed (by how many destructive tests): ${list(state)}`;
  return text;
}

/** Each divergence with both results and the source, past `limit` one line each. */
export function describeDivergences(divergences: readonly Divergence[], subjectMode: string, referenceMode: string, limit = LISTED): string {
  const full = divergences.slice(0, limit).map((d) =>
    [
      `${d.group.destroy}:`,
      `  ${subjectMode}: ${d.subject ? describe(d.subject) : 'no result'}`,
      `  ${referenceMode}: ${d.reference ? describe(d.reference) : 'no result'}`,
      indent(d.group.source, '    '),
    ].join('\n'),
  );
  const brief = divergences
    .slice(limit, limit + BRIEFLY)
    .map((d) => `  ${d.group.destroy}: ${subjectMode}: ${verdictKey(d.subject)}; ${referenceMode}: ${verdictKey(d.reference)}`);
  if (divergences.length > limit + BRIEFLY) brief.push(`  ... and ${divergences.length - limit - BRIEFLY} more`);
  if (brief.length > 0) full.push(`and, without their sources:\n${brief.join('\n')}`);
  return full.join('\n\n');
}
