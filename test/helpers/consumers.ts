// Real consumers of kvmtest's reports, from the distribution rather than
// written here, so a report is checked by what reads it in the field:
// Perl's TAP::Parser (what `prove` uses) for TAP. A test that needs one is
// skipped with the reason where it is missing, except under CI, which has
// it (perl is on the image) and must not pass on a silent skip.
import { execFileSync, spawnSync } from 'node:child_process';
import type { TestOptions } from 'node:test';
import { IN_CI } from './kvm.js';

/** One test point as TAP::Parser reads it. */
export interface ParsedTapTest {
  number: number;
  /** True for "ok", and for "not ok" with a TODO directive. */
  ok: boolean;
  description: string;
  /** "SKIP", "TODO" or "". */
  directive: string;
  explanation: string;
}

export interface ParsedTap {
  version: number;
  planned: number;
  tests: ParsedTapTest[];
  /** Test numbers TAP::Parser counts as skipped. */
  skipped: number[];
  /** The text after "Bail out!", when the stream says it. */
  bailout?: string;
  /** Anything TAP::Parser found wrong (bad plan, bad YAML, ...). */
  parseErrors: string[];
}

// Reads TAP on standard input and prints what TAP::Parser made of it, as JSON.
const TAP_TO_JSON = `
use strict; use warnings; use TAP::Parser; use JSON::PP;
local $/; my $tap = <STDIN>;
my $parser = TAP::Parser->new({ tap => $tap });
my @tests; my %doc = (tests => \\@tests);
while (my $r = $parser->next) {
  if ($r->is_test) {
    push @tests, { number => $r->number + 0, ok => $r->is_ok ? JSON::PP::true : JSON::PP::false,
                   description => $r->description, directive => $r->directive, explanation => $r->explanation };
  } elsif ($r->is_bailout) {
    $doc{bailout} = $r->explanation;
  }
}
$doc{version} = $parser->version + 0;
$doc{planned} = ($parser->tests_planned // 0) + 0;
$doc{skipped} = [map { $_ + 0 } $parser->skipped];
$doc{parseErrors} = [$parser->parse_errors];
print JSON::PP->new->canonical->encode(\\%doc);
`;

let tapProbe: { reason?: string } | undefined;

/** Why TAP::Parser cannot be run here, or undefined when it can. */
export function tapParserMissing(): string | undefined {
  if (!tapProbe) {
    try {
      execFileSync('perl', ['-MTAP::Parser', '-MJSON::PP', '-e', '1'], { stdio: 'ignore' });
      tapProbe = {};
    } catch {
      tapProbe = { reason: "Perl's TAP::Parser is not installed (apt-get install perl)" };
    }
  }
  return tapProbe.reason;
}

/** Options for a test that reads TAP with TAP::Parser. */
export function withTapParser(extra: TestOptions = {}): TestOptions {
  const reason = IN_CI ? undefined : tapParserMissing();
  return reason ? { ...extra, skip: reason } : extra;
}

/** `tap` as TAP::Parser reads it. */
export function parseTap(tap: string): ParsedTap {
  const run = spawnSync('perl', ['-e', TAP_TO_JSON], { input: tap, encoding: 'utf8' });
  if (run.status !== 0) throw new Error(`TAP::Parser failed (status ${run.status}):\n${run.stderr}`);
  return JSON.parse(run.stdout) as ParsedTap;
}
