// The span pass on its own (rba and plan jobs): the engine core's runPass with the span
// statistics consumer alone, every block output exposed raw, one forward pass for all spans.
import type { MatmulBackend } from '../linalg/matmul.js';
import { logitsOutput } from '../model/introspect.js';
import { runPass, type PassModel } from '../pass/run-pass.js';
import { DEFAULT_BATCH, openSource, type ModelContext, type RbaDataOptions } from './context.js';
import { SpanStatsConsumer, type SpanConsumerOptions } from './span-pass.js';
import type { SpanStats } from './span-stats.js';

export interface SpanPassResult {
  consumer: SpanStatsConsumer;
  stats: SpanStats;
  samples: number;
  forwardMs: number;
  accumulateMs: number;
  batchSize: number;
}

/**
 * Phase-1 driver: one forward pass over the calibration data with every block output exposed,
 * feeding the span consumer. (The engine core's runPass takes this role when it lands.)
 */
export async function runSpanPass(ctx: ModelContext, opts: RbaDataOptions, matmul: MatmulBackend, consumerOpts: SpanConsumerOptions = {}): Promise<SpanPassResult> {
  const source = await openSource(ctx, opts);
  const consumer = new SpanStatsConsumer(matmul, { heldOut: opts.heldOut, seed: opts.seed, file: ctx.loaded.path, ...consumerOpts });
  const model: PassModel = {
    loaded: ctx.loaded,
    blocks: ctx.detection.blocks.map((b) => ({ index: b.index, name: b.name, output: b.output })),
    blockInput: ctx.detection.blockInput,
    pooling: 'auto',
    maskInput: ctx.maskInput,
    logitsOutput: logitsOutput(ctx.loaded.model),
    session: { device: opts.device, threads: opts.threads, optimization: opts.optimization },
    totalSamples: source.samples,
    seed: opts.seed ?? 0,
    file: ctx.loaded.path,
  };
  const batchSize = source.fixedBatchSize ?? opts.batch ?? DEFAULT_BATCH;
  const t0 = performance.now();
  let pass;
  try {
    pass = await runPass(source, model, [consumer], { batchSize, signal: opts.signal });
  } finally {
    await source.close();
  }
  const total = performance.now() - t0;
  const stats = await consumer.finalize();
  return { consumer, stats, samples: stats.samples, forwardMs: pass.inferenceMs, accumulateMs: total - pass.inferenceMs - pass.sessionMs, batchSize };
}
