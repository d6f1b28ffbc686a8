// Real consumers of kvmtest's reports, from the distribution rather than
// written here, so a report is checked by what reads it in the field:
// Perl's TAP::Parser (what `prove` uses) for TAP, and libxml2's xmllint
// validating JUnit XML against the schema Jenkins checks reports with
// (test/report/fixtures/jenkins-junit.xsd). A test that needs one is
// skipped with the reason where it is missing, except under CI, which has
// both (perl is on the image, .ci/run installs libxml2-utils) and must not
// pass on a silent skip.
import { execFileSync, spawnSync } from 'node:child_process';
import type { TestOptions } from 'node:test';
import { fileURLToPath } from 'node:url';
import { IN_CI } from './kvm.js';

/** The Jenkins JUnit schema, in the source tree (this file runs from dist/test/helpers). */
export const JENKINS_JUNIT_XSD = fileURLToPath(new URL('../../../test/report/fixtures/jenkins-junit.xsd', import.meta.url));

/** One test point as TAP::Parser reads it. */
export interface ParsedTapTest {
  number: number;
  /** True for "ok", and for "not ok" with a TODO directive. */
  ok: boolean;
  description: string;
  /** "SKIP", "TODO" or "". */
  directive: string;
  explanation: string;
  /** The YAML diagnostics under the test line, as TAP::Parser's YAMLish reader read them. */
  diagnostics?: Record<string, unknown>;
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
  } elsif ($r->is_yaml && @tests) {
    $tests[-1]{diagnostics} = $r->data;
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

/**
 * A consumer that may be missing: `missing()` says why it cannot run here
 * (the command fails), `options()` skips a test with that reason but under CI.
 */
function consumer(command: string, args: readonly string[], reason: string) {
  let probe: { reason?: string } | undefined;
  const missing = (): string | undefined => {
    if (!probe) {
      try {
        execFileSync(command, args, { stdio: 'ignore' });
        probe = {};
      } catch {
        probe = { reason };
      }
    }
    return probe.reason;
  };
  const options = (extra: TestOptions = {}): TestOptions => {
    const why = IN_CI ? undefined : missing();
    return why ? { ...extra, skip: why } : extra;
  };
  return { missing, options };
}

const tapParser = consumer('perl', ['-MTAP::Parser', '-MJSON::PP', '-e', '1'], "Perl's TAP::Parser is not installed (apt-get install perl)");
/** Why TAP::Parser cannot be run here, or undefined when it can. */
export const tapParserMissing = tapParser.missing;
/** Options for a test that reads TAP with TAP::Parser. */
export const withTapParser = tapParser.options;

/** `tap` as TAP::Parser reads it. */
export function parseTap(tap: string): ParsedTap {
  const run = spawnSync('perl', ['-e', TAP_TO_JSON], { input: tap, encoding: 'utf8' });
  if (run.status !== 0) throw new Error(`TAP::Parser failed (status ${run.status}):\n${run.stderr}`);
  return JSON.parse(run.stdout) as ParsedTap;
}

const xmllint = consumer('xmllint', ['--version'], 'xmllint is not installed (apt-get install libxml2-utils)');
/** Why xmllint cannot be run here, or undefined when it can. */
export const xmllintMissing = xmllint.missing;
/** Options for a test that validates XML with xmllint. */
export const withXmllint = xmllint.options;

/**
 * What xmllint says is wrong with `xml` against the schema `xsd` (default:
 * Jenkins' JUnit schema): one line per error, none when it is valid.
 */
export function schemaErrors(xml: string, xsd: string = JENKINS_JUNIT_XSD): string[] {
  const run = spawnSync('xmllint', ['--noout', '--schema', xsd, '-'], { input: xml, encoding: 'utf8' });
  if (run.error) throw run.error;
  // 0: valid; 3: invalid against the schema; anything else: xmllint could not check.
  if (run.status !== 0 && run.status !== 3) throw new Error(`xmllint failed (status ${run.status}):\n${run.stderr}`);
  return run.stderr.split('\n').filter((line) => line !== '' && !/ validates$| fails to validate$/.test(line));
}
