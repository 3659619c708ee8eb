import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { describe, it } from 'node:test';
import { analyzeModel } from '../../src/engine/analysis/analyze';
import { runPlan } from '../../src/engine/rba/plan';
import type { BlockFn } from '../helpers/rba-models';
import { blocks, buildBlockModel, rbaTestEnv, writeModel } from '../helpers/rba-models';

const { matmul, tmp } = rbaTestEnv();

/**
 * Block 0 works on tiny activations (input scaled by 0.01) and is strongly nonlinear: its
 * absolute change is the smallest of all blocks, so raw BR (−mean (h_b − h_{b−1})²) ranks it
 * the most redundant. Block 1 scales the stream up 40×; blocks 1–3 are exactly affine, so a
 * linear map replaces them without loss, while block 0 cannot be replaced.
 */
function brTrapModel() {
  const d = 16;
  const nonlinear: BlockFn = (g, s, h, k) => {
    // h + relu(h·W1)·W2 at full strength: large relative change, tiny absolute one.
    const a = g.op(s, 'Relu', [g.op(s, 'MatMul', [h, g.random(`w1_${k}`, [d, 4 * d], 3 / Math.sqrt(d))])]);
    const f = g.op(s, 'MatMul', [a, g.random(`w2_${k}`, [4 * d, d], 3 / Math.sqrt(4 * d))]);
    return g.op(s, 'Add', [g.op(s, 'Abs', [f]), h]);
  };
  const scaleUp: BlockFn = (g, s, h, k) => g.op(s, 'Mul', [h, g.weight(`scale${k}`, [], () => 40)]);
  return buildBlockModel({ width: d, inputScale: 0.01, blocks: [nonlinear, scaleUp, blocks.affine(d), blocks.affine(d)], classes: 10, seed: 5 });
}

describe('plan', () => {
  it('BR ranks block 0 the most redundant; the plan rightly keeps it and removes the affine blocks', async () => {
    const file = writeModel(tmp, 'trap.onnx', brTrapModel());
    const report = await analyzeModel({ model: file, samples: 200, pooling: 'mean' });
    const br = report.metrics.br as number[];
    const brFirst = br.indexOf(Math.max(...br));
    assert.equal(brFirst, 0, `BR ${br.map((b) => b.toExponential(2)).join(', ')}`);

    const plan = await runPlan({ model: file, samples: 400, remove: 1, dryRun: true }, matmul);
    assert.ok(plan.chosen);
    const removed = plan.chosen.spans.flatMap((s) => Array.from({ length: s.to - s.from }, (_, k) => s.from + 1 + k));
    assert.ok(!removed.includes(0), `plan removed block 0: ${JSON.stringify(plan.chosen.spans)}`);
    assert.ok(plan.chosen.measured.agreement! > 0.999, `agreement ${plan.chosen.measured.agreement}`);
    // Block 0's span is ranked below the affine ones by held-out error.
    const rank0 = plan.spans.findIndex((s) => s.from === -1 && s.to === 0);
    const rankAffine = plan.spans.findIndex((s) => s.from === 2 && s.to === 3);
    assert.ok(rankAffine < rank0, 'the affine block ranks above block 0');
    assert.ok(plan.spans[rank0]!.relErr! > 100 * plan.spans[rankAffine]!.relErr!);

    // With a budget the plan removes all three affine blocks and still keeps block 0.
    const budget = await runPlan({ model: file, samples: 400, minAgreement: 0.99, dryRun: true }, matmul);
    assert.ok(budget.chosen, budget.message);
    assert.equal(budget.chosen.blocksRemoved, 3, budget.message);
    const removedB = budget.chosen.spans.flatMap((s) => Array.from({ length: s.to - s.from }, (_, k) => s.from + 1 + k));
    assert.deepEqual(removedB.sort(), [1, 2, 3], JSON.stringify(budget.chosen.spans));
    for (const m of budget.measurements) {
      assert.equal(m.meetsBudget, m.measured.agreement! >= 0.99, 'meetsBudget follows the measurement');
    }
  });

  it('says plainly when nothing meets the budget, shows the best found, and writes nothing', async () => {
    const file = writeModel(tmp, 'hard.onnx', buildBlockModel({ width: 12, blocks: [blocks.mlp(12, 3), blocks.mlp(12, 3), blocks.mlp(12, 3)], classes: 10, seed: 2 }));
    const before_ = readdirSync(tmp).length;
    const plan = await runPlan({ model: file, samples: 120, maxRelErr: 1e-9 }, matmul);
    assert.equal(plan.chosen, null);
    assert.ok(plan.bestFound, 'the best found is shown');
    assert.match(plan.message, /^no combination of spans meets output relative MSE ≤ 1e-9/);
    assert.match(plan.message, /nothing written/);
    assert.ok(plan.measurements.length >= 1 && plan.measurements.every((m) => !m.meetsBudget));
    assert.equal(plan.out, undefined);
    assert.equal(readdirSync(tmp).length, before_, 'no file written');
    // Asked for, it writes the best found.
    const out = `${tmp}/best.onnx`;
    const forced = await runPlan({ model: file, samples: 120, maxRelErr: 1e-9, writeBest: true, out }, matmul);
    assert.equal(forced.out, out);
    assert.ok(existsSync(out));
  });

  it('the memory budget leaves spans out and says which', async () => {
    const file = writeModel(tmp, 'budget.onnx', buildBlockModel({ width: 8, blocks: [blocks.mlp(8, 1), blocks.mlp(8, 1), blocks.mlp(8, 1)], classes: 4 }));
    const plan = await runPlan({ model: file, samples: 60, remove: 1, dryRun: true, budgetBytes: 2 * 8 * 9 * 17 * 3 + 10 }, matmul);
    assert.deepEqual(plan.excludedSpans.sort(), [[-1, 1], [-1, 2], [0, 2]].sort());
    assert.equal(plan.spans.length, 3);
    assert.ok(plan.spans.every((s) => s.blocksRemoved === 1));
  });
});
