import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

import { SCHEMA_VERSION, type AnalysisReport } from '../../src/engine/report/schema';
import { parseReport, ReportValidationError, validateReport } from '../../src/engine/report/validate';
import { exampleReport } from './report-fixture';

/** A fresh, JSON-round-tripped report (as it would be read from disk), loosely typed for mutation. */
function good(L = 12, opts: Parameters<typeof exampleReport>[1] = {}): any {
  return JSON.parse(JSON.stringify(exampleReport(L, opts)));
}

function rejects(value: unknown, path: string, problem: RegExp | string): void {
  let caught: unknown;
  try {
    validateReport(value);
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof ReportValidationError, `expected ReportValidationError for ${path}, got ${String(caught)}`);
  assert.equal(caught.path, path);
  assert.ok(caught.message.startsWith(`${path}: `), `message should start with the path: ${caught.message}`);
  if (typeof problem === 'string') assert.equal(caught.message, `${path}: ${problem}`);
  else assert.match(caught.problem, problem);
}

function mutated(mutate: (r: any) => void, L = 12, opts: Parameters<typeof exampleReport>[1] = {}): any {
  const r = good(L, opts);
  mutate(r);
  return r;
}

describe('validateReport accepts well-formed reports', () => {
  for (const L of [1, 2, 12, 48]) {
    it(`L = ${L}, round-tripped through JSON`, () => {
      const r = good(L);
      assert.equal(validateReport(r), r);
    });
  }
  it('the in-memory object from the fixture (not round-tripped)', () => {
    const r: AnalysisReport = exampleReport(12);
    assert.equal(validateReport(r), r);
  });
  it('without DR, without probe, without optional sections', () => {
    validateReport(good(12, { dr: false }));
    validateReport(good(12, { probe: false }));
    validateReport(good(12, { extras: false, modelAccuracy: false, timings: false, warnings: [] }));
  });
  it('null cells in matrices and null BR entries', () => {
    const r = good(12, { nullPairs: [[2, 9]] });
    r.metrics.br[3] = null;
    r.metrics.msrs.value = null;
    r.metrics.msrs.normalized = null;
    r.metrics.dr.value = null;
    r.metrics.dr.mean[0] = null;
    r.detection.blockInput = null;
    validateReport(r);
  });
  it('unknown extra keys (additive, same schema version)', () => {
    validateReport(mutated((r) => (r.metrics.futureMetric = [1, 2, 3])));
  });
  it('parseReport parses and validates JSON text', () => {
    const r = parseReport(JSON.stringify(exampleReport(4)));
    assert.equal(r.blocks.length, 4);
  });
});

describe('validateReport rejects defects with the JSON path of the first problem', () => {
  it('root is not an object', () => {
    rejects([], '(root)', 'expected object, found array');
    rejects(null, '(root)', 'expected object, found null');
    rejects('report', '(root)', 'expected object, found string');
  });

  it('schema version newer than supported', () => {
    rejects(mutated((r) => (r.schemaVersion = SCHEMA_VERSION + 1)), 'schemaVersion', /newer than this BlockLens understands.*update BlockLens/);
  });
  it('schema version older than expected', () => {
    rejects(mutated((r) => (r.schemaVersion = SCHEMA_VERSION - 1)), 'schemaVersion', /older than this BlockLens expects.*re-run/);
  });
  it('schema version of the wrong type or missing', () => {
    rejects(mutated((r) => (r.schemaVersion = '1')), 'schemaVersion', 'expected finite number, found string');
    rejects(mutated((r) => delete r.schemaVersion), 'schemaVersion', /required field missing/);
  });

  it('missing required key', () => {
    rejects(mutated((r) => delete r.model.sha256), 'model.sha256', 'required field missing (expected string)');
    rejects(mutated((r) => delete r.metrics.cka), 'metrics.cka', /required field missing/);
    rejects(mutated((r) => delete r.pooling), 'pooling', /required field missing \(expected object\)/);
  });

  it('wrong tool name', () => {
    rejects(mutated((r) => (r.tool.name = 'other')), 'tool.name', "expected 'blocklens', found 'other'");
  });

  it('matrix cell of the wrong type', () => {
    rejects(mutated((r) => (r.metrics.cka[3][1] = '0.5')), 'metrics.cka[3][1]', 'expected number or null, found string');
  });
  it('NaN and Infinity in a matrix, a vector, a scalar', () => {
    rejects(mutated((r) => (r.metrics.ckaUnbiased[0][5] = NaN)), 'metrics.ckaUnbiased[0][5]', 'expected number or null, found NaN');
    rejects(mutated((r) => (r.metrics.br[4] = Infinity)), 'metrics.br[4]', 'expected number or null, found Infinity');
    rejects(mutated((r) => (r.metrics.msrs.tau = -Infinity)), 'metrics.msrs.tau', 'expected finite number, found -Infinity');
  });
  it('matrix with the wrong number of rows', () => {
    rejects(mutated((r) => r.metrics.cka.pop()), 'metrics.cka', /expected length 12 .*found 11/);
  });
  it('matrix row with the wrong number of cells', () => {
    rejects(mutated((r) => r.metrics.cosine[2].push(0.1)), 'metrics.cosine[2]', /expected length 12 .*found 13/);
  });
  it('matrix that is not an array', () => {
    rejects(mutated((r) => (r.metrics.brMatrix = {})), 'metrics.brMatrix', /expected 12×12 matrix.*found object/);
    rejects(mutated((r) => (r.metrics.brMatrix[0] = 1)), 'metrics.brMatrix[0]', /expected row of 12 cells, found number/);
  });
  it('br of the wrong length', () => {
    rejects(mutated((r) => r.metrics.br.pop()), 'metrics.br', 'expected length 12 (one per block), found 11');
    rejects(mutated((r) => r.metrics.relativeMse.push(0)), 'metrics.relativeMse', /expected length 12/);
    rejects(mutated((r) => (r.metrics.blockInfluence[1] = 'x')), 'metrics.blockInfluence[1]', /expected number or null/);
  });
  it('enums', () => {
    rejects(mutated((r) => (r.pooling.used = 'auto')), 'pooling.used', /expected 'cls' \| 'mean' .*found 'auto'/);
    rejects(mutated((r) => (r.pooling.requested = 'max')), 'pooling.requested', /found 'max'/);
    rejects(mutated((r) => (r.detection.method = 'magic')), 'detection.method', /'scoped-names' \| 'residual-adds' \| 'user'.*found 'magic'/);
  });
  it('blocks out of order or empty', () => {
    rejects(mutated((r) => (r.blocks[2].index = 5)), 'blocks[2].index', 'expected 2 (blocks are listed in order), found 5');
    rejects(mutated((r) => (r.blocks = [])), 'blocks', /at least one block/);
    rejects(mutated((r) => (r.blocks[1].name = 7)), 'blocks[1].name', 'expected string, found number');
  });
  it('MSRS layer count must equal L', () => {
    rejects(mutated((r) => (r.metrics.msrs.layers = 11)), 'metrics.msrs.layers', 'expected 12 (the number of blocks), found 11');
  });
  it('DR curve defects', () => {
    rejects(mutated((r) => r.metrics.dr.mean.pop()), 'metrics.dr.mean', /expected length 13 \(one per fraction\), found 12/);
    rejects(mutated((r) => delete r.metrics.dr), 'metrics.dr', 'required field missing (expected object or null)');
    rejects(mutated((r) => (r.metrics.dr.block = 12)), 'metrics.dr.block', 'expected a block index below 12, found 12');
    rejects(mutated((r) => (r.metrics.dr.fractions[0] = 0)), 'metrics.dr.fractions[0]', 'expected a value in (0, 1], found 0');
  });
  it('probe defects', () => {
    rejects(mutated((r) => r.metrics.dr.probe.perClass[3].pop()), 'metrics.dr.probe.perClass[3]', /expected length 10 \(one accuracy per class\), found 9/);
    rejects(mutated((r) => (r.metrics.dr.probe.gini[0] = NaN)), 'metrics.dr.probe.gini[0]', 'expected finite number, found NaN');
    rejects(mutated((r) => (r.metrics.dr.probe.mean[2] = null)), 'metrics.dr.probe.mean[2]', 'expected finite number, found null');
  });
  it('timings with a non-number (key that needs quoting)', () => {
    rejects(mutated((r) => (r.timings['load model'] = '3')), 'timings["load model"]', 'expected finite number, found string');
  });
  it('NaN hidden in free-form preprocessing', () => {
    rejects(mutated((r) => (r.calibration.preprocessing.mean[1] = NaN), 12, { source: 'images' }), 'calibration.preprocessing.mean[1]', 'expected finite number, found NaN');
  });
  it('other field checks', () => {
    rejects(mutated((r) => (r.createdAt = 'yesterday')), 'createdAt', "expected an ISO 8601 date-time, found 'yesterday'");
    rejects(mutated((r) => (r.calibration.inputs[0].shape[1] = 2.5)), 'calibration.inputs[0].shape[1]', 'expected integer, found 2.5');
    rejects(mutated((r) => (r.calibration.batchSize = 0)), 'calibration.batchSize', 'expected integer ≥ 1, found 0');
    rejects(mutated((r) => (r.modelAccuracy.accuracy = 1.5)), 'modelAccuracy.accuracy', 'expected a value in [0, 1], found 1.5');
    rejects(mutated((r) => (r.warnings[0] = 3)), 'warnings[0]', 'expected string, found number');
    rejects(mutated((r) => (r.detection.blockInput = 3)), 'detection.blockInput', 'expected string or null, found number');
  });
  it('names the first problem when there are several', () => {
    const r = mutated((x) => {
      x.metrics.cka[1][1] = 'a';
      x.metrics.cka[0][2] = 'b';
      x.timings.load = 'c';
    });
    rejects(r, 'metrics.cka[0][2]', 'expected number or null, found string');
  });
  it('parseReport reports invalid JSON at the root', () => {
    assert.throws(() => parseReport('{"schemaVersion": 1,'), (e: unknown) => e instanceof ReportValidationError && e.path === '(root)' && /not valid JSON/.test(e.message));
  });
});
