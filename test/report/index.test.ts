import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { createReporter, REPORTER_NAMES } from '../../src/report/index.js';
import { drive, memorySink, passed } from './fixtures.js';

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
});
