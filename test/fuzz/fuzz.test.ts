// CI's fuzz run (issue 10): at least 1,000 seeded, structure-aware variants of the fixture models
// through decode, block detection and a short analysis, each case in a child process under a time
// limit. Zero crashes: every variant ends in a clean error or a validated report.
// FUZZ_CASES / FUZZ_SEED / FUZZ_WORKERS override the run (longer runs: test/fuzz/run.ts).
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { FIXTURES, REPO } from '../helpers/fixtures';
import { fuzzFixtures, runFuzz } from './harness';
import { makeVariant } from './mutate';
import { parseFields, serializeFields } from './wire-tree';

const CASES = Number(process.env.FUZZ_CASES ?? 1000);
const FIRST_SEED = Number(process.env.FUZZ_SEED ?? 1);

describe('fuzzed models', () => {
  it('the generator is deterministic per seed and mutates by structure', () => {
    const fixtures = fuzzFixtures(FIXTURES);
    const a = makeVariant(42, fixtures, '/nonexistent');
    const b = makeVariant(42, fixtures, '/nonexistent');
    assert.deepEqual(a.detail, b.detail);
    assert.deepEqual(Buffer.from(a.files[0]!.bytes!), Buffer.from(b.files[0]!.bytes!));
    const families = new Set(Array.from({ length: 200 }, (_, s) => makeVariant(s, fixtures, '/x').family));
    assert.deepEqual([...families].sort(), ['bytes', 'external', 'model', 'wire']);
    // The wire tree re-serialises an unmutated model byte for byte.
    const m = fixtures[0]!.bytes;
    assert.deepEqual(Buffer.from(serializeFields(parseFields(m)!)), Buffer.from(m));
  });

  it(`${CASES} seeded variants: no crash, no hang, no native death`, { timeout: 20 * 60 * 1000 }, async () => {
    const s = await runFuzz({
      cases: CASES,
      firstSeed: FIRST_SEED,
      workers: Number(process.env.FUZZ_WORKERS ?? 2),
      // Generous: CI machines are slow and shared; a hang is anything past this.
      caseTimeoutMs: Number(process.env.FUZZ_CASE_TIMEOUT_MS ?? 60000),
      fixtures: fuzzFixtures(FIXTURES),
    });
    mkdirSync(path.join(REPO, '.cache'), { recursive: true });
    writeFileSync(path.join(REPO, '.cache', 'fuzz-summary.json'), JSON.stringify(s, null, 1));
    console.log(`fuzz: ${s.tried} tried, ${s.ok} ok, ${s.errors} clean errors, ${s.crashes} crashes (${s.hangs} hangs) in ${s.wallMs} ms; ${JSON.stringify(s.byStage)}`);
    assert.equal(s.tried, CASES);
    const list = s.crashCases.map((c) => `seed ${c.seed} (${c.fixture}, ${c.family}): ${c.result.errorName}: ${c.result.message} :: ${c.detail.join('; ')}`);
    assert.deepEqual(list, [], 'crashes');
    // Every family reached every stage it can: the run exercised more than the decoder.
    assert.ok(s.ok > 0 && (s.byStage['error@detect'] ?? 0) > 0 && (s.byStage['error@analyze'] ?? 0) > 0, JSON.stringify(s.byStage));
  });
});
