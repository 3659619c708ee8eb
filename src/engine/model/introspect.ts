// Model introspection: what the rest of the engine needs to know about a model's interface —
// its inputs as the calibration layer sees them, hints for synthetic data (vocabulary sizes,
// sequence length), the attention-mask input, the logits output and tensor ranks.
import { GraphIndex } from '../blocks/graph-index.js';
import type { CalibrationHints, InputSpec, OrtDtype } from '../calibration/types.js';
import type { ModelProto } from '../onnx/types.js';

const ELEM_TO_ORT: Record<number, OrtDtype> = {
  1: 'float32', 2: 'uint8', 3: 'int8', 4: 'uint16', 5: 'int16', 6: 'int32', 7: 'int64', 9: 'bool',
  10: 'float16', 11: 'float64', 12: 'uint32', 13: 'uint64',
};

/** Graph inputs as the calibration layer sees them. */
export function modelInputs(model: ModelProto, modelPath?: string): InputSpec[] {
  const index = new GraphIndex(model.graph!);
  return index.graphInputs.map((name) => {
    const info = index.types.get(name);
    const dtype = info?.elemType !== undefined ? ELEM_TO_ORT[info.elemType] : undefined;
    if (!dtype) {
      throw Object.assign(new Error(`input '${name}' has a type BlockLens cannot feed (element type ${info?.elemType ?? 'unknown'})`), { file: modelPath });
    }
    return { name, dtype, shape: info?.dims ?? [] };
  });
}

/** Embedding-table sizes and sequence-length hints for synthetic token ids. */
export function calibrationHints(model: ModelProto): CalibrationHints {
  const index = new GraphIndex(model.graph!);
  const hints: CalibrationHints = {};
  const vocab: Record<string, number> = {};
  const initDims = new Map(model.graph!.initializer.map((t) => [t.name ?? '', t.dims.map(Number)]));
  for (const input of index.graphInputs) {
    // Follow casts/reshapes from the input to a Gather on a 2-D weight table.
    const queue = [input];
    const seen = new Set<string>();
    while (queue.length) {
      const t = queue.shift()!;
      if (seen.has(t) || seen.size > 16) continue;
      seen.add(t);
      for (const c of index.consumers.get(t) ?? []) {
        const node = index.nodes[c]!;
        if (node.opType === 'Gather' && node.input[1] === t) {
          const dims = initDims.get(node.input[0]!);
          if (dims && dims.length === 2) vocab[input] = Math.min(vocab[input] ?? Infinity, dims[0]!);
        } else if (['Cast', 'Reshape', 'Unsqueeze', 'Squeeze', 'Flatten', 'Identity'].includes(node.opType)) {
          queue.push(node.output[0]!);
        }
      }
    }
  }
  if (Object.keys(vocab).length) hints.vocabSize = vocab;
  // Position tables bound the sequence length.
  for (const t of model.graph!.initializer) {
    const name = (t.name ?? '').toLowerCase();
    if ((name.includes('position') || name.includes('wpe') || name.includes('pos_emb')) && t.dims.length === 2) {
      hints.seqLen = Math.min(hints.seqLen ?? 128, Number(t.dims[0]));
    }
  }
  return hints;
}

/** The integer [N, T] input whose name says it is an attention mask, if any. */
export function findMaskInput(inputs: InputSpec[]): string | undefined {
  return inputs.find((i) => /mask/i.test(i.name) && i.shape.length === 2 && i.dtype !== 'float32' && i.dtype !== 'float64')?.name;
}

/** The model's first graph output: the logits of a classifier. */
export function logitsOutput(model: ModelProto): string | undefined {
  return model.graph?.output[0]?.name;
}

/** Rank of a tensor from the graph's types (value_info, inputs, outputs), or undefined. */
export function tensorRank(model: ModelProto, tensor: string, index = new GraphIndex(model.graph!)): number | undefined {
  return index.rank(tensor);
}
