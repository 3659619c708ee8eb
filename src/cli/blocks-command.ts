// `blocklens blocks MODEL`: what detection found and why — route, blocks, block input and the
// reason for it, granularity, rejected routes — and the pooling `auto` would use, with its
// evidence (one tiny synthetic run of the model for shapes and the attention mask).
import { detectBlocks, type BlockDetection } from '../engine/blocks/detect.js';
import { GraphIndex } from '../engine/blocks/graph-index.js';
import type { PoolTarget } from '../engine/blocks/instrument.js';
import { planRepresentations, type RepresentationPlan } from '../engine/blocks/plan.js';
import { LayoutError } from '../engine/blocks/probe.js';
import { loadModelFile } from '../engine/onnx/model-file.js';
import type { Granularity, PoolingRequest, SequenceLayout } from '../engine/report/schema.js';

export interface BlocksCommandOptions {
  blocks?: string[];
  blockInput?: string;
  granularity?: Granularity;
  pooling?: PoolingRequest;
  layout?: SequenceLayout;
  threads?: number;
}

export interface BlocksResult {
  method: BlockDetection['method'];
  blockInput: string | null;
  blockInputReason: string;
  granularity: Granularity;
  explanation: string;
  blocks: { index: number; name: string; output: string; parameters: number }[];
  rejected: BlockDetection['rejected'];
  pooling: { requested: PoolingRequest; used: string; reason: string; evidence: string[] } | null;
  layout?: SequenceLayout;
  warnings: string[];
}

export async function explainBlocks(modelPath: string, o: BlocksCommandOptions = {}): Promise<BlocksResult> {
  const loaded = await loadModelFile(modelPath);
  let det: BlockDetection;
  try {
    det = detectBlocks(loaded.model, { blocks: o.blocks, blockInput: o.blockInput, granularity: o.granularity });
  } catch (e) {
    throw Object.assign(e as Error, { file: modelPath });
  }
  const index = new GraphIndex(loaded.model.graph!);
  const L = det.blocks.length;
  const targets: PoolTarget[] = det.blocks.map((b) => ({ key: String(b.index), tensor: b.output, rank: index.rank(b.output) ?? -1 }));
  if (det.blockInput) targets.push({ key: 'input', tensor: det.blockInput, rank: index.rank(det.blockInput) ?? -1 });
  const warnings = [...det.warnings];
  let plan: RepresentationPlan | undefined;
  try {
    plan = await planRepresentations({
      model: loaded.model, index, dir: loaded.dir, threads: o.threads, targets, lastKey: String(L - 1),
      requested: o.pooling ?? 'auto', layout: o.layout, file: loaded,
    });
  } catch (e) {
    if (e instanceof LayoutError) throw Object.assign(e, { file: modelPath });
    warnings.push(`pooling not decided: the model could not be run on a synthetic input (${(e as Error).message.split('\n')[0]}); analyze decides it on the calibration data`);
  }
  return {
    method: det.method,
    blockInput: det.blockInput,
    blockInputReason: det.blockInputReason,
    granularity: det.granularity,
    explanation: det.explanation,
    blocks: det.blocks.map((b) => ({ index: b.index, name: b.name, output: b.output, parameters: b.parameters })),
    rejected: det.rejected,
    pooling: plan ? { requested: o.pooling ?? 'auto', used: plan.pooling.used, reason: plan.pooling.reason, evidence: plan.pooling.evidence } : null,
    ...(plan?.layout ? { layout: plan.layout } : {}),
    warnings,
  };
}

export function formatBlocks(r: BlocksResult): string {
  // The route, one line per block, then why: block input, granularity, pooling, routes not taken.
  const lines = [r.explanation];
  for (const b of r.blocks) lines.push(`  ${String(b.index).padStart(3)}  ${b.name}  →  ${b.output}  (${b.parameters} params)`);
  lines.push(`block input h-1: ${r.blockInput ?? 'unknown'} — ${r.blockInputReason}`);
  lines.push(`granularity: ${r.granularity}`);
  if (r.pooling) {
    lines.push(`pooling: ${r.pooling.used} — ${r.pooling.reason}`);
    for (const e of r.pooling.evidence) lines.push(`  · ${e}`);
  }
  for (const x of r.rejected) lines.push(`not used: ${x.route} — ${x.reason}`);
  for (const w of r.warnings) lines.push(`warning: ${w}`);
  return lines.join('\n') + '\n';
}
