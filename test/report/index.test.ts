import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough, Writable } from 'node:stream';
import { createReporter, junitFileAttributesFromEnv, REPORTER_NAMES } from '../../src/report/index.js';
import { assertFailed, drive, memorySink, passed } from './fixtures.js';

describe('createReporter', () => {
  test('knows the four reporters', () => {
    assert.deepEqual([...REPORTER_NAMES], ['pretty', 'tap', 'json', 'junit']);
    for (const name of REPORTER_NAMES) {
      const reporter = createReporter(name, memorySink());
      assert.equal(typeof reporter.onRunEnd, 'function', name);
    }
  });

  test('an unknown name is an error that lists the valid ones', () => {
    assert.throws(() => createReporter('xml', memorySink()), {
      message: 'unknown reporter "xml": use one of pretty, tap, json, junit',
    });
  });

  test('each reporter writes what its name says', async () => {
    const firstLines: Record<string, string> = {};
    for (const name of REPORTER_NAMES) {
      const sink = memorySink();
      await drive(createReporter(name, sink), [passed('p')]);
      firstLines[name] = sink.text.split('\n')[0]!;
    }
    assert.deepEqual(firstLines, {
      pretty: 'running 1 test',
      tap: 'TAP version 13',
      json: '{',
      junit: '<?xml version="1.0" encoding="UTF-8"?>',
    });
  });

  test("junit's file and line attributes: off unless asked for, by option or KVMTEST_JUNIT_FILE_ATTRIBUTES", async () => {
    const attributesOf = async (options: { junitFileAttributes?: boolean }) => {
      const sink = memorySink();
      await drive(createReporter('junit', sink, options), [passed('p')]);
      return /<testcase [^>]*>|<testcase [^/]*\/>/.exec(sink.text)![0];
    };
    const saved = process.env['KVMTEST_JUNIT_FILE_ATTRIBUTES'];
    try {
      delete process.env['KVMTEST_JUNIT_FILE_ATTRIBUTES'];
      assert.doesNotMatch(await attributesOf({}), / file=/);
      assert.match(await attributesOf({ junitFileAttributes: true }), / file="tests\.c" line="3" /);
      process.env['KVMTEST_JUNIT_FILE_ATTRIBUTES'] = '1';
      assert.match(await attributesOf({}), / file="tests\.c" line="3" /);
      assert.doesNotMatch(await attributesOf({ junitFileAttributes: false }), / file=/, 'the option wins');
    } finally {
      if (saved === undefined) delete process.env['KVMTEST_JUNIT_FILE_ATTRIBUTES'];
      else process.env['KVMTEST_JUNIT_FILE_ATTRIBUTES'] = saved;
    }
    assert.deepEqual(
      ['', '0', '1', 'true', 'yes'].map((value) => junitFileAttributesFromEnv({ KVMTEST_JUNIT_FILE_ATTRIBUTES: value })),
      [false, false, true, true, true],
    );
    assert.equal(junitFileAttributesFromEnv({}), false);
  });

  test('passes color through to the pretty reporter', async () => {
    const sink = memorySink();
    await drive(createReporter('pretty', sink, { color: true }), [passed('p')]);
    assert.ok(sink.text.includes('\x1b[32mok\x1b[0m'));
  });

  test('onRunEnd resolves once a Node stream has taken the text', async () => {
    for (const name of REPORTER_NAMES) {
      const stream = new PassThrough();
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      await drive(createReporter(name, stream), [passed('p')]);
      assert.ok(Buffer.concat(chunks).toString('utf8').length > 0, name);
    }
  });

  test('onRunEnd rejects when the stream cannot take the text', async () => {
    const stream = new PassThrough();
    stream.on('error', () => {});
    stream.destroy();
    await assert.rejects(drive(createReporter('json', stream), [passed('p')]));
  });

  test('each reporter waits for a full stream instead of piling text up in its buffer', async () => {
    /** A slow stream with a tiny buffer that records the most text it ever held. */
    function slowStream() {
      const seen = { most: 0, largestWrite: 0 };
      const stream: Writable = new Writable({
        highWaterMark: 64,
        write(chunk: Buffer, _encoding, done) {
          seen.largestWrite = Math.max(seen.largestWrite, chunk.length);
          // This chunk and all queued behind it.
          seen.most = Math.max(seen.most, stream.writableLength);
          setImmediate(done);
        },
      });
      return { stream, seen };
    }
    const results = Array.from({ length: 40 }, (_, i) => ({ ...assertFailed(`t${i}`), output: 'o'.repeat(1000) }));
    for (const name of REPORTER_NAMES) {
      const { stream, seen } = slowStream();
      await drive(createReporter(name, stream), results);
      // Waiting for 'drain' before each write: never more than one write on top of a buffer below its mark.
      assert.ok(seen.most <= seen.largestWrite + 64, `${name}: ${seen.most} bytes buffered at once (largest write ${seen.largestWrite})`);
    }
  });
});
