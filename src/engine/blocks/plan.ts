// How block outputs become representations: the rank of every target, the layout of 3-D ones
// ([N, T, d] or [T, N, d], from one probe run), and the pooling with its evidence (evaluating the
// attention mask for `auto`). Shared by `analyze` and `blocks`.
import type * as ort from 'onnxruntime-node';
import type { ModelBytes } from '../onnx/by-reference.js';
import type { ModelProto } from '../onnx/types.js';
import type { PoolingRequest, SequenceLayout } from '../report/schema.js';
import type { GraphIndex } from './graph-index.js';
import { choosePooling, type PoolingChoice, type PoolTarget } from './instrument.js';
import { Structure } from './structure.js';
import { evaluateCausalMask, LAYOUT_HELP, LayoutError, layoutFromDims, probeDims, tinyFeeds, type CausalCheck, type ProbeSettings } from './probe.js';

export interface PlanOptions extends ProbeSettings {
  model: ModelProto;
  index: GraphIndex;
  /** Block outputs and h_{−1}; ranks < 0 are learned here. */
  targets: PoolTarget[];
  /** Key of the last block's target. */
  lastKey: string;
  requested: PoolingRequest;
  /** User's layout for 3-D block outputs, if given. */
  layout?: SequenceLayout;
  /** Feeds of a real first batch (analyze); synthetic ones otherwise. */
  feeds?: Record<string, ort.Tensor>;
  /** Batch size of `feeds`. */
  batchSize?: number;
  /** Dims of tensors already seen in a run on `feeds` (no second probe session for them). */
  seen?: Map<string, number[]>;
}

export interface RepresentationPlan {
  pooling: PoolingChoice;
  /** Set when block outputs are 3-D. */
  layout?: SequenceLayout;
  /** Set when the last block's 4-D output is channels-last (NHWC): tells which targets are. */
  channelsLast?: (tensor: string) => boolean;
  causal?: CausalCheck;
}

export async function planRepresentations(o: PlanOptions): Promise<RepresentationPlan> {
  const last = o.targets.find((t) => t.key === o.lastKey);
  if (!last) throw new Error(`no target '${o.lastKey}'`);
  const layoutNotes: string[] = [];
  let layout: SequenceLayout | undefined = o.layout;
  const needLayout = !layout && (last.rank === 3 || last.rank < 0);
  if (needLayout || o.targets.some((t) => t.rank < 0)) {
    const probeTargets = [...new Set([...o.targets.filter((t) => t.rank < 0).map((t) => t.tensor), last.tensor])];
    // Batch n and sequence t of different sizes, so the batch axis shows in the output dims.
    let feeds = o.feeds ?? tinyFeeds(o.model, o.index, 2, 5, 1);
    const first = Object.values(feeds)[0];
    let n = o.feeds ? (o.batchSize ?? 1) : ((first?.dims[0] as number | undefined) ?? 2);
    // Two samples tell the batch axis as well as the whole batch does, at a fraction of a forward
    // pass (a model with a fixed batch size takes only the whole batch).
    let dims: Map<string, number[]> | undefined = o.feeds && probeTargets.every((t) => o.seen?.has(t)) ? new Map(probeTargets.map((t) => [t, o.seen!.get(t)!])) : undefined;
    if (!dims && o.feeds && n > 2) {
      dims = await probeDims(o.model, o.index, probeTargets, firstOf(feeds, n, 2), o).catch(() => undefined);
      if (dims) {
        feeds = firstOf(feeds, n, 2);
        n = 2;
      }
    }
    dims ??= await probeDims(o.model, o.index, probeTargets, feeds, o);
    for (const t of o.targets) if (t.rank < 0 && dims.has(t.tensor)) t.rank = dims.get(t.tensor)!.length;
    if (last.rank === 3 && !layout) {
      let d = dims.get(last.tensor)!;
      layout = layoutFromDims(d, n);
      if (!layout && n > 1) {
        // Batch size equal to the sequence length: look again at one sample.
        feeds = firstOf(feeds, n);
        n = 1;
        const again = await probeDims(o.model, o.index, [last.tensor], feeds, o).catch(() => undefined);
        if (again?.has(last.tensor)) {
          d = again.get(last.tensor)!;
          layout = layoutFromDims(d, 1);
        }
      }
      if (!layout && d[0] === 1 && d[1] === 1) layout = 'ntd'; // one sample of one token: nothing to tell apart
      if (!layout) {
        throw new LayoutError(`block outputs are 3-D with dims [${d.join(', ')}] for a batch of ${n}: the batch axis cannot be told; ${LAYOUT_HELP}`);
      }
      // (No batch sizes in the note: shards of one analysis must give the same report.)
      layoutNotes.push(
        layout === 'tnd'
          ? 'block outputs are sequence-first [T, N, d] (the batch is their axis 1 in a probe run): transposed to [N, T, d] before pooling'
          : 'block outputs are batch-first [N, T, d] (the batch is their axis 0 in a probe run)',
      );
    }
  } else if (layout && last.rank === 3) {
    layoutNotes.push(`layout ${layout} given with --layout`);
  }
  if (last.rank !== 3) layout = undefined;
  // 4-D maps: channels on axis 1 unless the graph moved them after the last Conv.
  let channelsLast: ((tensor: string) => boolean) | undefined;
  if (last.rank === 4) {
    const st = new Structure(o.index);
    if (st.channelAxis(last.tensor) === 3) {
      channelsLast = (t: string) => st.channelAxis(t) === 3;
      layoutNotes.push('block outputs are channels-last [N, H, W, C] (a Transpose after their last Conv moves the channels to axis 3): transposed to NCHW before pooling');
    }
  }

  let causal: CausalCheck | undefined;
  if (o.requested === 'auto' && last.rank === 3) causal = await evaluateCausalMask(o.model, o.index, o);
  const pooling = choosePooling(o.requested, o.index, last.tensor, last.rank, causal);
  pooling.evidence.push(...layoutNotes);
  return { pooling, layout, channelsLast, causal };
}

/** The first k samples of every feed (all feeds carry the batch on axis 0). */
function firstOf(feeds: Record<string, ort.Tensor>, n: number, k = 1): Record<string, ort.Tensor> {
  const out: Record<string, ort.Tensor> = {};
  for (const [name, t] of Object.entries(feeds)) {
    const dims = t.dims as readonly number[];
    if (dims[0] !== n) {
      out[name] = t;
      continue;
    }
    const per = (t.data as ArrayLike<unknown>).length / n;
    const data = (t.data as unknown as { subarray(a: number, b: number): ort.Tensor.DataType }).subarray(0, k * per);
    out[name] = new (t.constructor as typeof ort.Tensor)(t.type as 'float32', data as Float32Array, [k, ...dims.slice(1)]);
  }
  return out;
}

/**
 * The pooling for a pass whose ranks are known: layout of 3-D block outputs from the first batch
 * (`feeds`), and for `auto` the attention mask evaluated once. What runPass calls.
 */
export async function decidePooling(o: {
  model: ModelProto; index: GraphIndex; dir: string; threads?: number; lastTensor: string; rank: number;
  requested: PoolingRequest; layout?: SequenceLayout; feeds: Record<string, ort.Tensor>; batchSize: number;
  /** The model's file: probes pass its inline weights by reference. */
  file?: ModelBytes;
  /** Dims already seen in a run on `feeds`. */
  seen?: Map<string, number[]>;
}): Promise<PoolingChoice & { layout?: SequenceLayout; channelsLast?: (tensor: string) => boolean }> {
  const targets: PoolTarget[] = [{ key: 'last', tensor: o.lastTensor, rank: o.rank }];
  const plan = await planRepresentations({
    model: o.model, index: o.index, dir: o.dir, threads: o.threads, targets, lastKey: 'last',
    requested: o.requested, layout: o.layout, feeds: o.feeds, batchSize: o.batchSize, file: o.file, seen: o.seen,
  });
  return { ...plan.pooling, layout: plan.layout, channelsLast: plan.channelsLast };
}
