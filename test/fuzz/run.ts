// Command line for longer fuzz runs than CI's:
//   node --import tsx test/fuzz/run.ts [cases] [firstSeed] [workers]
// Prints the summary as JSON (crash cases with their seeds and what was mutated).
import * as path from 'node:path';
import { fuzzFixtures, runFuzz } from './harness';

const [cases = '200', first = '1', workers = '2'] = process.argv.slice(2);
async function main() {
const s = await runFuzz({
  cases: Number(cases),
  firstSeed: Number(first),
  workers: Number(workers),
  caseTimeoutMs: Number(process.env.FUZZ_CASE_TIMEOUT_MS ?? 60000),
  fixtures: fuzzFixtures(path.resolve(__dirname, '..', 'fixtures')),
  onCase: (v, r) => {
    if (r.outcome === 'crash' || process.env.FUZZ_VERBOSE) process.stderr.write(`${v.seed} ${v.fixture} ${v.family} ${r.outcome}@${r.stage} ${r.errorName}: ${r.message} :: ${v.detail.join('; ')}\n`);
  },
});
console.log(JSON.stringify(s, null, 1));
}
void main();
