// Token sources: .jsonl (one object per line: input name → integer array, or {"text": ...}
// with a tokenizer) and plain .txt (one sample per line, tokenized with tokenizer.json).
// Every sequence is padded on the right or truncated to the model's sequence length.

import { createReadStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { Tokenizer } from '@huggingface/tokenizers';
import type { CalibrationInfo } from '../report/schema';
import { BaseSource } from './base';
import { allocate, floatToHalf, intRange, isFloat } from './dtype';
import { classCount, readLabelsFor } from './labels';
import { sortedSubset } from '../random';
import { requestedCount, roundToFixedBatch } from './sample-count';
import { fixedBatchOf, formatModelShape, roleOf, type InputRole } from './shapes';
import { DEFAULT_SEQ_LEN } from './synthetic';
import { CalibrationError, throwIfAborted, type CalibrationBatch, type InputSpec, type OpenOptions, type SampleRange } from './types';

const LINE_LABEL_KEYS = ['label', 'labels'];

interface LoadedTokenizer {
  path: string;
  tok: Tokenizer;
  padId: number;
  special: Set<number>;
}

/** tokenizer.json: the explicit one, else beside the model, else beside the data. */
export async function findTokenizer(opts: OpenOptions): Promise<string | undefined> {
  if (opts.tokenizer) {
    if (!(await isFile(opts.tokenizer))) throw new CalibrationError(opts.tokenizer, `${opts.tokenizer}: tokenizer file not found`);
    return opts.tokenizer;
  }
  const candidates = [opts.modelPath && join(dirname(opts.modelPath), 'tokenizer.json'), opts.data && join(dirname(opts.data), 'tokenizer.json')];
  for (const c of candidates) if (c && (await isFile(c))) return c;
  return undefined;
}

async function isFile(p: string): Promise<boolean> {
  try {
    return (await stat(p)).isFile();
  } catch {
    return false;
  }
}

export async function loadTokenizer(path: string): Promise<LoadedTokenizer> {
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(await readFile(path, 'utf8'));
  } catch (e) {
    throw new CalibrationError(path, `${basename(path)}: not a readable tokenizer.json (${(e as Error).message})`);
  }
  let config: Record<string, unknown> = {};
  const cfgPath = join(dirname(path), 'tokenizer_config.json');
  if (await isFile(cfgPath)) {
    try {
      config = JSON.parse(await readFile(cfgPath, 'utf8'));
    } catch {
      config = {};
    }
  }
  let tok: Tokenizer;
  try {
    tok = new Tokenizer(json, config);
  } catch (e) {
    throw new CalibrationError(path, `${basename(path)}: cannot load the tokenizer: ${(e as Error).message}`);
  }
  const padding = json.padding as { pad_id?: unknown } | null | undefined;
  const padId =
    typeof padding?.pad_id === 'number' ? padding.pad_id
      : tok.token_to_id('[PAD]') ?? tok.token_to_id('<pad>') ?? tok.token_to_id('<|padding|>') ?? 0;
  const special = new Set<number>();
  for (const [id, t] of tok.get_added_tokens_decoder()) if (t.special) special.add(id);
  return { path, tok, padId, special };
}

interface Plan {
  spec: InputSpec;
  role: InputRole;
  T: number;
}

interface Row {
  /** Per input (by plan index): the values for this sample, already T long. */
  values: number[][];
  label?: number;
  truncated: boolean;
  padded: boolean;
}

interface Fills {
  /** Inputs the data did not give, filled in (name → how). */
  generated: Map<string, string>;
}

export type TokenKind = 'jsonl' | 'text';

export class TokenSource extends BaseSource {
  readonly info: CalibrationInfo;
  readonly samples: number;

  private constructor(
    private readonly kind: TokenKind,
    private readonly path: string,
    private readonly plans: Plan[],
    private readonly tokenizer: LoadedTokenizer | undefined,
    private readonly selection: number[],
    private readonly labels: Int32Array | undefined,
    private readonly vocab: Record<string, number>,
    info: CalibrationInfo,
  ) {
    super();
    this.info = info;
    this.samples = selection.length;
  }

  static async open(kind: TokenKind, path: string, opts: OpenOptions): Promise<TokenSource> {
    const name = basename(path);
    if (!(await isFile(path))) throw new CalibrationError(path, `${path}: file not found`);
    const seqHint = opts.hints?.seqLen ?? DEFAULT_SEQ_LEN;
    const plans: Plan[] = opts.inputs.map((spec) => {
      if (spec.shape.length !== 2) {
        throw new CalibrationError(path, `${name}: token data feeds inputs of shape [N,seq]; input '${spec.name}' expects shape ${formatModelShape(spec)}`);
      }
      const d = spec.shape[1];
      return { spec, role: roleOf(spec.name), T: typeof d === 'number' && d > 0 ? d : seqHint };
    });
    if (!plans.some((p) => p.role === 'ids')) {
      throw new CalibrationError(path, `${name}: the model has no token-id input (inputs: ${opts.inputs.map((i) => i.name).join(', ')})`);
    }
    const vocab = opts.hints?.vocabSize ?? {};

    // Tokenizer: required for .txt, loaded for .jsonl only when a line has text.
    let tokenizer: LoadedTokenizer | undefined;
    const tokPath = await findTokenizer(opts);
    const needTokenizer = async (): Promise<LoadedTokenizer> => {
      if (tokenizer) return tokenizer;
      if (!tokPath) {
        const where = opts.modelPath ? join(dirname(opts.modelPath), 'tokenizer.json') : 'beside the model (no model path given)';
        throw new CalibrationError(path, `${name}: text needs a tokenizer.json to turn into token ids; none found (looked for ${where} and beside the data); give one with the tokenizer option`);
      }
      tokenizer = await loadTokenizer(tokPath);
      return tokenizer;
    };
    if (kind === 'text') await needTokenizer();

    // First pass: count samples, check every line (so errors come before any batch).
    const fills: Fills = { generated: new Map() };
    let total = 0;
    let truncated = 0;
    let padded = 0;
    let labeled = 0;
    const lineLabels: number[] = [];
    for await (const { line, lineNo } of readLines(path)) {
      let row: Row;
      try {
        row = toRow(kind, line, lineNo, name, path, plans, tokenizer, vocab, fills);
      } catch (e) {
        if (!(e instanceof NeedTokenizer)) throw e;
        await needTokenizer();
        row = toRow(kind, line, lineNo, name, path, plans, tokenizer, vocab, fills);
      }
      total++;
      if (row.truncated) truncated++;
      if (row.padded) padded++;
      if (row.label !== undefined) {
        labeled++;
        lineLabels.push(row.label);
      }
    }
    if (total === 0) throw new CalibrationError(path, `${name} has no samples (no non-empty lines)`);
    if (labeled !== 0 && labeled !== total) {
      throw new CalibrationError(path, `${name}: ${labeled} of ${total} lines have a label; give a label on every line or on none`);
    }

    let allLabels: Int32Array | undefined;
    let labelSource: string | undefined;
    if (opts.labels) {
      allLabels = await readLabelsFor(opts.labels, name, total);
      labelSource = opts.labels;
    } else if (labeled) {
      allLabels = Int32Array.from(lineLabels);
      labelSource = `${name} ("label" field)`;
    }

    const notes: string[] = [];
    const count = { path, name, unit: 'samples', total, samples: opts.samples, maxSamples: opts.maxSamples };
    const samples = roundToFixedBatch(opts.inputs, requestedCount(count, notes), count, notes);
    const seed = opts.seed ?? 0;
    const selection = sortedSubset(total, samples, seed);
    const padIds = plans.filter((p) => p.role === 'ids').map((p) => p.spec.name);
    const info: CalibrationInfo = {
      source: kind,
      path,
      samples,
      seed,
      batchSize: 0,
      preprocessing: {
        seqLen: Object.fromEntries(plans.map((p) => [p.spec.name, p.T])),
        padding: `right; ${padIds.join(', ')} with pad id ${tokenizer?.padId ?? 0}, attention mask 0, other inputs 0`,
        truncation: tokenizer ? 'right, keeping a final special token (e.g. [SEP])' : 'right',
        padded: padded,
        truncated: truncated,
        ...(tokenizer ? { tokenizer: tokenizer.path } : {}),
        selection: samples < total ? `seeded random subset of ${samples} of ${total} lines, kept in file order` : `all ${total} lines in file order`,
      },
      inputs: plans.map((p) => {
        const fill = fills.generated.get(p.spec.name);
        return { name: p.spec.name, dtype: p.spec.dtype, shape: [samples, p.T], ...(fill ? { fill } : {}) };
      }),
    };
    let labels: Int32Array | undefined;
    if (allLabels) {
      labels = Int32Array.from(selection, (i) => allLabels![i]);
      info.labels = { source: labelSource!, classes: classCount(allLabels) };
    }
    if (notes.length) info.note = notes.join(' ');
    const src = new TokenSource(kind, path, plans, tokenizer, selection, labels, vocab, info);
    const fixed = fixedBatchOf(opts.inputs);
    if (fixed !== undefined) src.fixedBatchSize = fixed;
    return src;
  }

  protected async *produce(batchSize: number, range: SampleRange, signal?: AbortSignal): AsyncGenerator<CalibrationBatch> {
    const name = basename(this.path);
    const fills: Fills = { generated: new Map() };
    let sampleIndex = 0; // index among non-empty lines
    let pick = 0; // next position in selection
    let rows: Row[] = [];
    const flush = (): CalibrationBatch => {
      const b = rows.length;
      const feeds: CalibrationBatch['feeds'] = {};
      this.plans.forEach((p, k) => {
        const data = allocate(p.spec.dtype, b * p.T);
        for (let r = 0; r < b; r++) {
          const v = rows[r].values[k];
          const off = r * p.T;
          if (data instanceof BigInt64Array || data instanceof BigUint64Array) for (let t = 0; t < p.T; t++) data[off + t] = BigInt(v[t]);
          else if (p.spec.dtype === 'float16') for (let t = 0; t < p.T; t++) data[off + t] = floatToHalf(v[t]);
          else for (let t = 0; t < p.T; t++) data[off + t] = v[t];
        }
        feeds[p.spec.name] = { dtype: p.spec.dtype, dims: [b, p.T], data };
      });
      const start = pick - b;
      const batch: CalibrationBatch = { feeds, size: b, first: start };
      if (this.labels) batch.labels = this.labels.slice(start, pick);
      rows = [];
      return batch;
    };
    throwIfAborted(signal);
    for await (const { line, lineNo } of readLines(this.path)) {
      if (pick >= range.end) break;
      if (this.selection[pick] === sampleIndex) {
        if (pick < range.start) {
          // Before this range: skipped (ids are positions in the selection, whatever the range).
          pick++;
          sampleIndex++;
          continue;
        }
        rows.push(toRow(this.kind, line, lineNo, name, this.path, this.plans, this.tokenizer, this.vocab, fills));
        pick++;
        if (rows.length === batchSize) {
          yield flush();
          throwIfAborted(signal);
        }
      }
      sampleIndex++;
    }
    if (rows.length) yield flush();
  }
}

/** Non-empty lines with their 1-based line numbers. */
async function* readLines(path: string): AsyncGenerator<{ line: string; lineNo: number }> {
  const stream = createReadStream(path, { encoding: 'utf8' });
  const rl = createInterface({ input: stream, crlfDelay: Infinity });
  let lineNo = 0;
  try {
    for await (const raw of rl) {
      lineNo++;
      const line = lineNo === 1 ? raw.replace(/^\uFEFF/, '') : raw;
      if (line.trim() === '') continue;
      yield { line, lineNo };
    }
  } finally {
    rl.close();
    stream.destroy();
  }
}

/** Thrown by toRow when a line has text to tokenize and no tokenizer is loaded yet. */
class NeedTokenizer extends Error {}

function toRow(
  kind: TokenKind,
  line: string,
  lineNo: number,
  name: string,
  path: string,
  plans: Plan[],
  tokenizer: LoadedTokenizer | undefined,
  vocab: Record<string, number>,
  fills: Fills,
): Row {
  const fail = (m: string): never => {
    throw new CalibrationError(path, `${name} line ${lineNo}: ${m}`);
  };
  let given: Record<string, unknown> = {};
  let text: string | undefined;
  let pair: string | undefined;
  let label: number | undefined;
  if (kind === 'text') {
    text = line;
  } else {
    let obj: unknown;
    try {
      obj = JSON.parse(line);
    } catch (e) {
      fail(`not valid JSON (${(e as Error).message})`);
    }
    if (!obj || typeof obj !== 'object' || Array.isArray(obj)) fail('expected a JSON object mapping input names to token id arrays');
    given = obj as Record<string, unknown>;
    const inputNames = new Set(plans.map((p) => p.spec.name));
    for (const k of LINE_LABEL_KEYS) {
      if (k in given && !inputNames.has(k)) {
        const v = given[k];
        if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) fail(`"${k}" must be a non-negative integer class index, found ${JSON.stringify(v)}`);
        label = v as number;
      }
    }
    if (typeof given.text === 'string' && !plans.some((p) => p.role === 'ids' && p.spec.name in given)) {
      text = given.text;
      if (typeof given.text_pair === 'string') pair = given.text_pair;
    }
  }

  let enc: { ids: number[]; attention_mask: number[]; token_type_ids?: number[] } | undefined;
  if (text !== undefined) {
    if (!tokenizer) throw new NeedTokenizer();
    enc = tokenizer!.tok.encode(text, { text_pair: pair ?? null, return_token_type_ids: true });
  }

  // Content length: the first token-id input's length.
  const values: (number[] | undefined)[] = plans.map((p) => {
    if (p.spec.name in given) {
      const v = given[p.spec.name];
      if (!Array.isArray(v)) fail(`'${p.spec.name}' must be an array of numbers, found ${JSON.stringify(v)?.slice(0, 40)}`);
      const arr = v as unknown[];
      for (let t = 0; t < arr.length; t++) {
        const x = arr[t];
        if (typeof x !== 'number' || !Number.isFinite(x)) fail(`'${p.spec.name}'[${t}] is ${JSON.stringify(x)}, not a finite number`);
        if (!isFloat(p.spec.dtype) && !Number.isInteger(x)) fail(`'${p.spec.name}'[${t}] is ${x}; input '${p.spec.name}' is ${p.spec.dtype}`);
      }
      return arr as number[];
    }
    if (enc) {
      if (p.role === 'ids') return enc.ids;
      if (p.role === 'mask') return enc.attention_mask;
      if (p.role === 'type') return enc.token_type_ids ?? enc.ids.map(() => 0);
    }
    return undefined;
  });
  const idsIndex = plans.findIndex((p, k) => p.role === 'ids' && values[k] !== undefined);
  for (let k = 0; k < plans.length; k++) {
    if (plans[k].role === 'ids' && values[k] === undefined) {
      const has = Object.keys(given);
      fail(`no '${plans[k].spec.name}' (the line has: ${has.length ? has.join(', ') : 'nothing'})${kind === 'jsonl' ? '; give token ids, or "text" with a tokenizer' : ''}`);
    }
  }
  const contentLen = values[idsIndex]!.length;

  const row: Row = { values: [], label, truncated: false, padded: false };
  plans.forEach((p, k) => {
    let v = values[k];
    const T = p.T;
    let generated: string | undefined;
    if (v === undefined) {
      if (p.role === 'mask') {
        generated = '1 over tokens, 0 over padding';
        v = new Array(Math.min(contentLen, T)).fill(1);
      } else if (p.role === 'type') {
        generated = 'zeros';
        v = [];
      } else {
        generated = 'positions 0..T-1';
        v = Array.from({ length: T }, (_, t) => t);
      }
      fills.generated.set(p.spec.name, generated);
    }
    if (p.role === 'ids') {
      const cap = vocab[p.spec.name];
      for (let t = 0; t < v.length; t++) {
        if (v[t] < 0 || (cap !== undefined && v[t] >= cap)) {
          fail(`input '${p.spec.name}' has token id ${v[t]} at position ${t}, outside the vocabulary [0, ${cap ?? '∞'})`);
        }
      }
    }
    if (v.length > T) {
      row.truncated = true;
      const last = v[v.length - 1];
      if (enc && text !== undefined && tokenizer && !(p.spec.name in given) && tokenizer.special.has(enc.ids[enc.ids.length - 1]) && T > 1) {
        v = [...v.slice(0, T - 1), last]; // keep the final special token ([SEP], </s>)
      } else v = v.slice(0, T);
    }
    if (v.length < T) {
      row.padded = true;
      const pad = p.role === 'ids' ? tokenizer?.padId ?? 0 : 0;
      v = v.concat(new Array(T - v.length).fill(pad));
    }
    const [lo, hi] = rangeOf(p.spec.dtype);
    for (let t = 0; t < T; t++) {
      if (v[t] < lo || v[t] > hi) fail(`input '${p.spec.name}' value ${v[t]} at position ${t} is outside the ${p.spec.dtype} range`);
    }
    row.values.push(v);
  });
  return row;
}

/** Values a token-id input can hold, within what a JSON number represents exactly. */
function rangeOf(d: InputSpec['dtype']): [number, number] {
  if (d === 'float16') return [-65504, 65504];
  if (isFloat(d)) return [-Infinity, Infinity];
  const [lo, hi] = intRange(d);
  return [Math.max(lo, -Number.MAX_SAFE_INTEGER), Math.min(hi, Number.MAX_SAFE_INTEGER)];
}
