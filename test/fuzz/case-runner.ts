// Child process of the fuzz harness: runs one case at a time through decode, block detection and
// a short analysis, and answers one JSON line per case on stdout. The parent kills it when a case
// runs past its time limit, and counts its death (native crash, out of memory) as a crash.
import * as path from 'node:path';
import { createInterface } from 'node:readline';
import { analyzeModel } from '../../src/engine/analysis/analyze';
import { detectBlocks } from '../../src/engine/blocks/detect';
import { checkExternalData, loadModelFile } from '../../src/engine/onnx/model-file';
import { classifyError, type CaseRequest, type CaseResult } from './outcome';

async function runCase(req: CaseRequest): Promise<CaseResult> {
  const file = path.join(req.dir, req.model);
  let stage: CaseResult['stage'] = 'decode';
  try {
    const loaded = await loadModelFile(file);
    await checkExternalData(loaded);
    stage = 'detect';
    detectBlocks(loaded.model);
    stage = 'analyze';
    const report = await analyzeModel({ model: file, samples: req.samples, batch: req.batch, seed: req.seed });
    return { id: req.id, outcome: 'ok', stage, blocks: report.blocks.length };
  } catch (e) {
    return { id: req.id, stage, ...classifyError(e, file) };
  }
}

const rl = createInterface({ input: process.stdin });
// One case at a time, in order: the parent's watchdog times exactly the case in flight.
let queue = Promise.resolve();
rl.on('line', (line) => {
  if (!line.trim()) return;
  const req = JSON.parse(line) as CaseRequest;
  queue = queue.then(async () => {
    const result = await runCase(req);
    process.stdout.write(JSON.stringify(result) + '\n');
  });
});
rl.on('close', () => {
  void queue.then(() => process.exit(0));
});
