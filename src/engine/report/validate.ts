// Structural validation of an AnalysisReport read from disk or received over a boundary.
// Hand-written checks, no dependency. The first problem found is thrown as a
// ReportValidationError whose message starts with the JSON path of that problem, e.g.
//   metrics.cka[3][1]: expected number or null, found string
// Unknown extra keys are allowed (additive changes do not need a schema bump); every number
// anywhere in the report must be finite.

import {
  SCHEMA_VERSION,
  type AnalysisReport,
  type DetectionMethod,
  type Pooling,
  type PoolingRequest,
} from './schema';

export class ReportValidationError extends Error {
  /** JSON path of the offending value, e.g. `metrics.cka[3][1]`; `(root)` for the whole value. */
  readonly path: string;
  /** What is wrong, without the path. */
  readonly problem: string;

  constructor(path: string, problem: string) {
    super(`${path}: ${problem}`);
    this.name = 'ReportValidationError';
    this.path = path;
    this.problem = problem;
  }
}

const POOLINGS: readonly Pooling[] = ['cls', 'mean', 'last', 'gap', 'tokens'];
const POOLING_REQUESTS: readonly PoolingRequest[] = ['auto', ...POOLINGS];
const DETECTION_METHODS: readonly DetectionMethod[] = ['scoped-names', 'residual-adds', 'user', 'repeated-units'];

type Obj = Record<string, unknown>;

/** Describe a value's kind for an error message. */
function kindOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') {
    if (Number.isNaN(v)) return 'NaN';
    if (!Number.isFinite(v)) return v > 0 ? 'Infinity' : '-Infinity';
    return 'number';
  }
  return typeof v;
}

const IDENT = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

function key(path: string, k: string): string {
  const part = IDENT.test(k) ? k : `[${JSON.stringify(k)}]`;
  if (path === '') return IDENT.test(k) ? k : part;
  return IDENT.test(k) ? `${path}.${k}` : `${path}${part}`;
}

function idx(path: string, i: number): string {
  return `${path}[${i}]`;
}

function show(path: string): string {
  return path === '' ? '(root)' : path;
}

function fail(path: string, problem: string): never {
  throw new ReportValidationError(show(path), problem);
}

function expected(path: string, what: string, v: unknown): never {
  if (v === undefined) fail(path, `required field missing (expected ${what})`);
  fail(path, `expected ${what}, found ${kindOf(v)}`);
}

function obj(v: unknown, path: string): Obj {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) expected(path, 'object', v);
  return v as Obj;
}

function arr(v: unknown, path: string, what = 'array'): unknown[] {
  if (!Array.isArray(v)) expected(path, what, v);
  return v;
}

function str(v: unknown, path: string): string {
  if (typeof v !== 'string') expected(path, 'string', v);
  return v;
}

function num(v: unknown, path: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v)) expected(path, 'finite number', v);
  return v;
}

function numOrNull(v: unknown, path: string): number | null {
  if (v === null) return null;
  if (typeof v !== 'number' || !Number.isFinite(v)) expected(path, 'number or null', v);
  return v;
}

function int(v: unknown, path: string, min = 0): number {
  const n = num(v, path);
  if (!Number.isInteger(n)) fail(path, `expected integer, found ${n}`);
  if (n < min) fail(path, `expected integer ≥ ${min}, found ${n}`);
  return n;
}

function strOrNull(v: unknown, path: string): string | null {
  if (v === null) return null;
  if (typeof v !== 'string') expected(path, 'string or null', v);
  return v;
}

function oneOf<T extends string>(v: unknown, allowed: readonly T[], path: string): T {
  const list = allowed.map((a) => `'${a}'`).join(' | ');
  if (typeof v !== 'string') expected(path, list, v);
  if (!(allowed as readonly string[]).includes(v)) fail(path, `expected ${list}, found '${v}'`);
  return v as T;
}

function optional(o: Obj, k: string, path: string, check: (v: unknown, p: string) => void): void {
  if (o[k] !== undefined) check(o[k], key(path, k));
}

function length(a: unknown[], n: number, path: string, why: string): void {
  if (a.length !== n) fail(path, `expected length ${n} (${why}), found ${a.length}`);
}

function numArray(v: unknown, path: string, nullable: boolean): (number | null)[] {
  const a = arr(v, path);
  a.forEach((x, i) => (nullable ? numOrNull(x, idx(path, i)) : num(x, idx(path, i))));
  return a as (number | null)[];
}

function vector(v: unknown, path: string, L: number): void {
  const a = numArray(v, path, true);
  length(a, L, path, 'one per block');
}

function matrix(v: unknown, path: string, L: number): void {
  const rows = arr(v, path, `${L}×${L} matrix (array of rows)`);
  length(rows, L, path, `rows of an ${L}×${L} matrix`);
  rows.forEach((row, i) => {
    const rp = idx(path, i);
    const cells = arr(row, rp, `row of ${L} cells`);
    length(cells, L, rp, `cells in a row of an ${L}×${L} matrix`);
    cells.forEach((c, j) => numOrNull(c, idx(rp, j)));
  });
}

/** Reject NaN/Infinity anywhere inside free-form data. */
function finiteDeep(v: unknown, path: string, depth = 0): void {
  if (depth > 64) fail(path, 'nesting too deep');
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) fail(path, `expected finite number, found ${kindOf(v)}`);
  } else if (typeof v === 'bigint' || typeof v === 'function' || typeof v === 'symbol') {
    fail(path, `expected JSON value, found ${typeof v}`);
  } else if (Array.isArray(v)) {
    v.forEach((x, i) => finiteDeep(x, idx(path, i), depth + 1));
  } else if (typeof v === 'object' && v !== null) {
    for (const [k, x] of Object.entries(v)) finiteDeep(x, key(path, k), depth + 1);
  }
}

function fraction01(v: unknown, path: string, lowOpen: boolean): number {
  const n = num(v, path);
  if (n > 1 || n < 0 || (lowOpen && n === 0)) {
    fail(path, `expected a value in ${lowOpen ? '(0, 1]' : '[0, 1]'}, found ${n}`);
  }
  return n;
}

function checkSchemaVersion(v: unknown): void {
  const path = 'schemaVersion';
  const n = int(v, path, 0);
  if (n > SCHEMA_VERSION) {
    fail(
      path,
      `report uses schema version ${n}, newer than this BlockLens understands (${SCHEMA_VERSION}); update BlockLens to read it`,
    );
  }
  if (n < SCHEMA_VERSION) {
    fail(
      path,
      `report uses schema version ${n}, older than this BlockLens expects (${SCHEMA_VERSION}); re-run the analysis to regenerate it`,
    );
  }
}

function checkTool(v: unknown): void {
  const o = obj(v, 'tool');
  if (o.name !== 'blocklens') {
    if (typeof o.name !== 'string') expected('tool.name', "'blocklens'", o.name);
    fail('tool.name', `expected 'blocklens', found '${o.name}'`);
  }
  str(o.version, 'tool.version');
}

function checkModel(v: unknown): void {
  const p = 'model';
  const o = obj(v, p);
  str(o.path, key(p, 'path'));
  str(o.sha256, key(p, 'sha256'));
  int(o.irVersion, key(p, 'irVersion'));
  int(o.opsetVersion, key(p, 'opsetVersion'));
  int(o.parameters, key(p, 'parameters'));
  optional(o, 'producer', p, str);
  optional(o, 'sizeBytes', p, (x, q) => int(x, q));
}

function checkBlocks(v: unknown): number {
  const p = 'blocks';
  const a = arr(v, p);
  if (a.length === 0) fail(p, 'expected at least one block, found none');
  a.forEach((b, i) => {
    const bp = idx(p, i);
    const o = obj(b, bp);
    const index = int(o.index, key(bp, 'index'));
    if (index !== i) fail(key(bp, 'index'), `expected ${i} (blocks are listed in order), found ${index}`);
    str(o.name, key(bp, 'name'));
    str(o.output, key(bp, 'output'));
    int(o.parameters, key(bp, 'parameters'));
  });
  return a.length;
}

function checkDetection(v: unknown): void {
  const p = 'detection';
  const o = obj(v, p);
  oneOf(o.method, DETECTION_METHODS, key(p, 'method'));
  strOrNull(o.blockInput, key(p, 'blockInput'));
  str(o.explanation, key(p, 'explanation'));
  optional(o, 'blockInputReason', p, str);
  optional(o, 'granularity', p, (x, q) => oneOf(x, ['layer', 'sublayer'] as const, q));
  optional(o, 'layout', p, (x, q) => oneOf(x, ['ntd', 'tnd'] as const, q));
  optional(o, 'rejected', p, (x, q) =>
    arr(x, q).forEach((r, i) => {
      const rp = idx(q, i);
      const ro = obj(r, rp);
      str(ro.route, key(rp, 'route'));
      str(ro.reason, key(rp, 'reason'));
    }),
  );
}

function checkCalibration(v: unknown): void {
  const p = 'calibration';
  const o = obj(v, p);
  str(o.source, key(p, 'source'));
  optional(o, 'path', p, str);
  int(o.samples, key(p, 'samples'));
  num(o.seed, key(p, 'seed'));
  int(o.batchSize, key(p, 'batchSize'), 1);
  optional(o, 'checksum', p, str);
  optional(o, 'preprocessing', p, (x, q) => finiteDeep(obj(x, q), q));
  const ip = key(p, 'inputs');
  arr(o.inputs, ip).forEach((inp, i) => {
    const q = idx(ip, i);
    const io = obj(inp, q);
    str(io.name, key(q, 'name'));
    str(io.dtype, key(q, 'dtype'));
    const sp = key(q, 'shape');
    arr(io.shape, sp).forEach((d, k) => int(d, idx(sp, k)));
    optional(io, 'fill', q, str);
  });
  optional(o, 'labels', p, (x, q) => {
    const lo = obj(x, q);
    str(lo.source, key(q, 'source'));
    int(lo.classes, key(q, 'classes'), 1);
  });
  optional(o, 'heldOut', p, (x, q) => fraction01(x, q, false));
  optional(o, 'note', p, str);
}

function checkPooling(v: unknown): void {
  const p = 'pooling';
  const o = obj(v, p);
  oneOf(o.requested, POOLING_REQUESTS, key(p, 'requested'));
  oneOf(o.used, POOLINGS, key(p, 'used'));
  str(o.reason, key(p, 'reason'));
  optional(o, 'evidence', p, (x, q) => arr(x, q).forEach((e, i) => str(e, idx(q, i))));
}

function checkWarnings(v: unknown): void {
  arr(v, 'warnings').forEach((w, i) => str(w, idx('warnings', i)));
}

function checkProbe(v: unknown, p: string): void {
  const o = obj(v, p);
  const fp = key(p, 'fractions');
  const fr = arr(o.fractions, fp);
  fr.forEach((f, i) => fraction01(f, idx(fp, i), true));
  const n = fr.length;
  const classes = int(o.classes, key(p, 'classes'), 1);
  for (const k of ['mean', 'std', 'gini', 'cv'] as const) {
    const kp = key(p, k);
    length(numArray(o[k], kp, false), n, kp, 'one per fraction');
  }
  num(o.fullAccuracy, key(p, 'fullAccuracy'));
  numOrNull(o.value, key(p, 'value'));
  num(o.delta, key(p, 'delta'));
  const pp = key(p, 'perClass');
  const rows = arr(o.perClass, pp);
  length(rows, n, pp, 'one row per fraction');
  rows.forEach((row, i) => {
    const rp = idx(pp, i);
    length(numArray(row, rp, false), classes, rp, 'one accuracy per class');
  });
  int(o.trainSamples, key(p, 'trainSamples'));
  int(o.testSamples, key(p, 'testSamples'));
}

function checkDr(v: unknown, p: string, L: number): void {
  if (v === null) return;
  if (v === undefined) expected(p, 'object or null', v);
  const o = obj(v, p);
  const bp = key(p, 'block');
  const block = int(o.block, bp);
  if (block >= L) fail(bp, `expected a block index below ${L}, found ${block}`);
  const fp = key(p, 'fractions');
  const fr = arr(o.fractions, fp);
  fr.forEach((f, i) => fraction01(f, idx(fp, i), true));
  for (const k of ['mean', 'std'] as const) {
    const kp = key(p, k);
    length(numArray(o[k], kp, true), fr.length, kp, 'one per fraction');
  }
  num(o.delta, key(p, 'delta'));
  numOrNull(o.value, key(p, 'value'));
  int(o.seeds, key(p, 'seeds'));
  optional(o, 'probe', p, checkProbe);
}

function checkMetrics(v: unknown, L: number): void {
  const p = 'metrics';
  const o = obj(v, p);
  vector(o.br, key(p, 'br'), L);
  optional(o, 'relativeMse', p, (x, q) => vector(x, q, L));
  optional(o, 'blockInfluence', p, (x, q) => vector(x, q, L));
  for (const k of ['brMatrix', 'cosine', 'cka', 'ckaUnbiased'] as const) matrix(o[k], key(p, k), L);
  const mp = key(p, 'msrs');
  const m = obj(o.msrs, mp);
  numOrNull(m.value, key(mp, 'value'));
  numOrNull(m.normalized, key(mp, 'normalized'));
  num(m.beta, key(mp, 'beta'));
  num(m.tau, key(mp, 'tau'));
  const layers = int(m.layers, key(mp, 'layers'));
  if (layers !== L) fail(key(mp, 'layers'), `expected ${L} (the number of blocks), found ${layers}`);
  checkDr(o.dr, key(p, 'dr'), L);
}

function checkModelAccuracy(v: unknown, p: string): void {
  const o = obj(v, p);
  fraction01(o.accuracy, key(p, 'accuracy'), false);
  int(o.samples, key(p, 'samples'));
  optional(o, 'perClass', p, (x, q) => numArray(x, q, false));
}

const SPAN_ESTIMATES = ['tokens', 'token-subsample', 'pooled'] as const;

/** A span's ends: −1 ≤ from < to ≤ L−1. */
function spanEnds(o: Obj, p: string, L: number): void {
  const from = int(o.from, key(p, 'from'), -1);
  const to = int(o.to, key(p, 'to'), 0);
  if (from >= to) fail(key(p, 'to'), `expected a block after 'from' (${from}), found ${to}`);
  if (to >= L) fail(key(p, 'to'), `expected a block index below ${L}, found ${to}`);
}

function checkSpans(v: unknown, p: string, L: number): void {
  arr(v, p).forEach((e, i) => {
    const ep = idx(p, i);
    const o = obj(e, ep);
    spanEnds(o, ep, L);
    const removed = int(o.blocksRemoved, key(ep, 'blocksRemoved'), 1);
    if (removed !== (o.to as number) - (o.from as number)) fail(key(ep, 'blocksRemoved'), `expected to − from = ${(o.to as number) - (o.from as number)}, found ${removed}`);
    for (const k of ['relErr', 'r2', 'skipRelErr', 'skipR2'] as const) numOrNull(o[k], key(ep, k));
    optional(o, 'relErrAtLast', ep, numOrNull);
    num(o.paramsSaved, key(ep, 'paramsSaved'));
    oneOf(o.estimate, SPAN_ESTIMATES, key(ep, 'estimate'));
    const rp = key(ep, 'rows');
    const rows = obj(o.rows, rp);
    int(rows.train, key(rp, 'train'));
    int(rows.heldOut, key(rp, 'heldOut'));
  });
}

function checkSpansExcluded(v: unknown, p: string, L: number): void {
  arr(v, p).forEach((e, i) => {
    const ep = idx(p, i);
    const pair = arr(e, ep, '[from, to] pair');
    length(pair, 2, ep, '[from, to]');
    spanEnds({ from: pair[0], to: pair[1] }, ep, L);
  });
}

function checkTimings(v: unknown, p: string): void {
  const o = obj(v, p);
  for (const [k, t] of Object.entries(o)) num(t, key(p, k));
}

/**
 * Check that `value` is a well-formed AnalysisReport of the current schema version and
 * return it typed. Throws ReportValidationError naming the JSON path of the first problem.
 */
export function validateReport(value: unknown): AnalysisReport {
  const r = obj(value, '');
  checkSchemaVersion(r.schemaVersion);
  checkTool(r.tool);
  const created = str(r.createdAt, 'createdAt');
  if (Number.isNaN(Date.parse(created))) fail('createdAt', `expected an ISO 8601 date-time, found '${created}'`);
  checkModel(r.model);
  const L = checkBlocks(r.blocks);
  checkDetection(r.detection);
  checkCalibration(r.calibration);
  checkPooling(r.pooling);
  checkWarnings(r.warnings);
  checkMetrics(r.metrics, L);
  optional(r, 'modelAccuracy', '', checkModelAccuracy);
  optional(r, 'spans', '', (x, q) => checkSpans(x, q, L));
  optional(r, 'spansExcluded', '', (x, q) => checkSpansExcluded(x, q, L));
  optional(r, 'timings', '', checkTimings);
  return value as AnalysisReport;
}

/** Parse JSON text and validate it; JSON syntax errors are reported at `(root)`. */
export function parseReport(json: string): AnalysisReport {
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch (e) {
    throw new ReportValidationError('(root)', `not valid JSON (${(e as Error).message})`);
  }
  return validateReport(value);
}
