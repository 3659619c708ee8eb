// Requests of the RBA jobs (issue 7) as plain data: what the CLI and the extension send to the
// engine (in process or through the job process). Results are the engine's result types.
import type { RbaOptions } from '../engine/rba/export.js';
import type { PlanOptions } from '../engine/rba/plan.js';
import type { VerifyOptions } from '../engine/rba/verify.js';

type Plain<T> = Omit<T, 'signal' | 'onProgress'>;

/** Replace the given spans, write the new model, verify it. */
export type RbaRequest = Plain<RbaOptions>;
/** Choose spans for a budget, measure, and write the chosen model (unless dryRun). */
export type PlanRequest = Plain<PlanOptions>;
/** Compare a new model with its original on (held-out) data. */
export type VerifyRequest = Plain<VerifyOptions>;

export type { RbaResult } from '../engine/rba/export.js';
export type { PlanResult } from '../engine/rba/plan.js';
export type { VerifyResult } from '../engine/rba/verify.js';
