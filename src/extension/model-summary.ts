// A model's header facts for the read-only .onnx editor: inputs, outputs, opset, parameters and
// the detected blocks. Pure engine code (no `vscode`): it runs in summary-worker.ts, off the
// extension host's thread, so a 100 MB model never freezes the editor.
import { detectBlocks } from '../engine/blocks/detect.js';
import { GraphIndex } from '../engine/blocks/graph-index.js';
import { opsetVersion } from '../engine/onnx/builder.js';
import { countParameters, loadModelFile } from '../engine/onnx/model-file.js';
import type { DetectionMethod } from '../engine/report/schema.js';

const ELEM_NAMES: Record<number, string> = {
  1: 'float32', 2: 'uint8', 3: 'int8', 4: 'uint16', 5: 'int16', 6: 'int32', 7: 'int64', 8: 'string', 9: 'bool',
  10: 'float16', 11: 'float64', 12: 'uint32', 13: 'uint64', 16: 'bfloat16',
};

export interface TensorSummary {
  name: string;
  dtype: string;
  /** Dims as declared: numbers, symbolic names, '?' when unknown; null when the rank is unknown. */
  shape: (number | string)[] | null;
}

export interface ModelSummary {
  path: string;
  sizeBytes: number;
  sha256: string;
  irVersion: number;
  opset: number | null;
  producer?: string;
  parameters: number;
  nodes: number;
  inputs: TensorSummary[];
  outputs: TensorSummary[];
  blocks: { index: number; name: string; output: string; parameters: number }[];
  detection: { method: DetectionMethod; explanation: string; blockInput: string | null } | { error: string };
}

export type SummaryReply = { ok: true; summary: ModelSummary } | { ok: false; message: string; file?: string };

export async function summarizeModel(file: string): Promise<ModelSummary> {
  const loaded = await loadModelFile(file);
  const graph = loaded.model.graph;
  const index = graph ? new GraphIndex(graph) : undefined;
  const tensor = (name: string): TensorSummary => {
    const t = index?.types.get(name);
    return {
      name,
      dtype: t?.elemType !== undefined ? (ELEM_NAMES[t.elemType] ?? `type ${t.elemType}`) : '?',
      shape: t?.dims ? t.dims.map((d) => d ?? '?') : null,
    };
  };
  let detection: ModelSummary['detection'];
  let blocks: ModelSummary['blocks'] = [];
  try {
    const d = detectBlocks(loaded.model);
    detection = { method: d.method, explanation: d.explanation, blockInput: d.blockInput };
    blocks = d.blocks.map((b) => ({ index: b.index, name: b.name, output: b.output, parameters: b.parameters }));
  } catch (e) {
    detection = { error: (e as Error).message };
  }
  return {
    path: loaded.path,
    sizeBytes: loaded.sizeBytes,
    sha256: loaded.sha256,
    irVersion: Number(loaded.model.irVersion ?? 0),
    opset: opsetVersion(loaded.model, '') ?? opsetVersion(loaded.model, 'ai.onnx') ?? null,
    producer: [loaded.model.producerName, loaded.model.producerVersion].filter(Boolean).join(' ') || undefined,
    parameters: countParameters(loaded.model),
    nodes: graph?.node.length ?? 0,
    inputs: (index?.graphInputs ?? []).map(tensor),
    outputs: (index?.graphOutputs ?? []).map(tensor),
    blocks,
    detection,
  };
}
