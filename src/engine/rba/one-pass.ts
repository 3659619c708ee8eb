// The span pass on its own (rba and plan jobs): the engine core's runPass with the span
// statistics consumer alone, every block output exposed raw, one forward pass for all spans.
import type { MatmulBackend } from '../linalg/matmul.js';
import { logitsOutput } from '../model/introspect.js';
import { runPass, type PassModel } from '../pass/run-pass.js';
import { DEFAULT_BATCH, openSource, type ModelContext, type RbaDataOptions } from './context.js';
import { RbaSpanError, SpanStatsConsumer, type SpanConsumerOptions } from './span-pass.js';
import type { SpanStats } from './span-stats.js';

export interface SpanPassResult {
  consumer: SpanStatsConsumer;
  stats: SpanStats;
  samples: number;
  /** Inside `session.run`: the forward pass, and with the in-graph form the products too. */
  forwardMs: number;
  /** Everything else after the session is built: batches, the JavaScript side of the sums. */
  accumulateMs: number;
  /** Building the session (rank probe, instrumented copy). */
  sessionMs: number;
  batchSize: number;
}

/**
 * Phase-1 driver: one forward pass over the calibration data with every block output exposed,
 * feeding the span consumer. (The engine core's runPass takes this role when it lands.)
 */
export async function runSpanPass(ctx: ModelContext, opts: RbaDataOptions, matmul: MatmulBackend, consumerOpts: SpanConsumerOptions = {}): Promise<SpanPassResult> {
  const first = await openSource(ctx, opts);
  const model: PassModel = {
    loaded: ctx.loaded,
    blocks: ctx.detection.blocks.map((b) => ({ index: b.index, name: b.name, output: b.output })),
    blockInput: ctx.detection.blockInput,
    pooling: 'auto',
    maskInput: ctx.maskInput,
    logitsOutput: logitsOutput(ctx.loaded.model),
    session: { device: opts.device, threads: opts.threads, optimization: opts.optimization },
    totalSamples: first.samples,
    seed: opts.seed ?? 0,
    file: ctx.loaded.path,
  };
  let opened: typeof first | undefined = first;
  const attempt = async (inGraph?: boolean) => {
    const source = opened ?? (await openSource(ctx, opts));
    opened = undefined;
    const consumer = new SpanStatsConsumer(matmul, { heldOut: opts.heldOut, seed: opts.seed, file: ctx.loaded.path, ...consumerOpts, ...(inGraph === false ? { inGraph } : {}) });
    const batchSize = source.fixedBatchSize ?? opts.batch ?? DEFAULT_BATCH;
    const t0 = performance.now();
    try {
      const pass = await runPass(source, model, [consumer], { batchSize, signal: opts.signal });
      return { consumer, pass, batchSize, total: performance.now() - t0 };
    } catch (e) {
      // The in-graph products could not be built (a block layout they do not take, e.g.
      // sequence-first or channels-last outputs): the rows come out raw instead.
      if (consumer.inGraph && !consumer.stats && !opts.signal?.aborted && !(e instanceof RbaSpanError) && (e as Error).name !== 'AbortError') return undefined;
      throw e;
    } finally {
      await source.close();
    }
  };
  const run = (await attempt()) ?? (await attempt(false))!;
  const { consumer, pass, batchSize, total } = run;
  const stats = await consumer.finalize();
  return { consumer, stats, samples: stats.samples, forwardMs: pass.inferenceMs, accumulateMs: total - pass.inferenceMs - pass.sessionMs, sessionMs: pass.sessionMs, batchSize };
}
