// The one table of analysis options: the CLI builds its parser and its help text from it, and
// every client (CLI, extension) turns option values into the protocol's AnalyzeRequest with
// `requestFromOptions`. Plain data and small parsers only: no Node or VS Code imports.
import type { AnalyzeRequest } from './analyze-request.js';

export type CommandName = 'blocks' | 'analyze' | 'merge';

export interface OptionSpec {
  /** Flag without the leading dashes. */
  name: string;
  type: 'string' | 'boolean';
  /** Placeholder in the help text. */
  arg?: string;
  help: string;
  short?: string;
  commands: readonly CommandName[];
  /** Where the value goes in an AnalyzeRequest: a field, or 'image.<field>' for preprocessing. */
  field?: string;
  /** Turns the string into the request's value; throws OptionError with a clear message. */
  parse?: (value: string, flag: string) => unknown;
}

export class OptionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'OptionError';
  }
}

const int = (min: number) => (v: string, flag: string): number => {
  if (!/^-?\d+$/.test(v) || Number(v) < min) throw new OptionError(`--${flag} expects an integer ≥ ${min}, got '${v}'`);
  return Number(v);
};
const num = (v: string, flag: string): number => {
  const x = Number(v);
  if (v.trim() === '' || !Number.isFinite(x)) throw new OptionError(`--${flag} expects a number, got '${v}'`);
  return x;
};
const fraction = (v: string, flag: string): number => {
  const x = num(v, flag);
  if (!(x > 0 && x <= 1)) throw new OptionError(`--${flag} must be in (0, 1]`);
  return x;
};
const numbers = (v: string, flag: string): number[] => {
  const xs = v.split(',').map(Number);
  if (xs.some((x) => !Number.isFinite(x))) throw new OptionError(`--${flag} expects comma-separated numbers, got '${v}'`);
  return xs;
};
const names = (v: string): string[] => v.split(',').map((s) => s.trim()).filter(Boolean);
/** `I:J[,I:J…]`: spans of blocks (I may be −1, block 0's input). */
const spanList = (v: string, flag: string): { from: number; to: number }[] =>
  v.split(',').map((part) => {
    const m = /^\s*(-?\d+)\s*:\s*(-?\d+)\s*$/.exec(part);
    if (!m) throw new OptionError(`--${flag} expects spans I:J separated by commas (e.g. 3:5), got '${part}'`);
    const from = Number(m[1]);
    const to = Number(m[2]);
    if (from < -1 || to <= from) throw new OptionError(`--${flag} ${part}: needs −1 ≤ I < J (the map replaces blocks I+1..J)`);
    return { from, to };
  });
const oneOf = (allowed: readonly string[]) => (v: string, flag: string): string => {
  if (!allowed.includes(v)) throw new OptionError(`--${flag} must be one of ${allowed.join(', ')}; got '${v}'`);
  return v;
};

const A: readonly CommandName[] = ['analyze'];
const AB: readonly CommandName[] = ['analyze', 'blocks'];
const OUT: readonly CommandName[] = ['analyze', 'merge'];
const ALL: readonly CommandName[] = ['analyze', 'blocks', 'merge'];

export const OPTIONS: readonly OptionSpec[] = [
  { name: 'data', type: 'string', arg: 'PATH', commands: A, field: 'data', help: 'calibration data: .npy, .npz, folder of <input>.npy, image folder, .jsonl token ids, or .txt lines (with tokenizer.json). Default: synthetic' },
  { name: 'labels', type: 'string', arg: 'PATH', commands: A, field: 'labels', help: 'integer .npy labels (image folders give labels from subfolders)' },
  { name: 'samples', type: 'string', arg: 'N', commands: A, field: 'samples', parse: int(1), help: 'number of samples (default 512: a seeded subset of --data when it holds more, or 512 synthetic samples)' },
  { name: 'batch', type: 'string', arg: 'N', commands: A, field: 'batch', parse: int(1), help: 'batch size (default 32)' },
  { name: 'seed', type: 'string', arg: 'N', commands: A, field: 'seed', parse: int(0), help: 'seed for synthetic data, subsets and splits (default 0)' },
  { name: 'pooling', type: 'string', arg: 'P', commands: AB, field: 'pooling', parse: oneOf(['auto', 'cls', 'mean', 'last', 'gap', 'tokens']), help: 'auto | cls | mean | last | gap | tokens (default auto)' },
  { name: 'blocks', type: 'string', arg: 'T,T,...', commands: AB, field: 'blocks', parse: names, help: 'block output tensors, overriding detection' },
  { name: 'block-input', type: 'string', arg: 'T', commands: AB, field: 'blockInput', help: "tensor taken as block 0's input" },
  { name: 'granularity', type: 'string', arg: 'layer|sublayer', commands: AB, field: 'granularity', parse: oneOf(['layer', 'sublayer']), help: 'layer (default), or sublayer: one block per residual sub-block (attention, MLP)' },
  { name: 'dr-block', type: 'string', arg: 'N', commands: A, field: 'drBlock', parse: int(0), help: 'block for the diffused-redundancy curve (default: last)' },
  { name: 'delta', type: 'string', arg: 'X', commands: A, field: 'delta', parse: fraction, help: 'DR threshold δ in (0, 1] (default 0.9)' },
  { name: 'fit-span', type: 'string', arg: 'I:J,...', commands: A, field: 'fitSpans', parse: spanList, help: 'also fit these RBA spans on every token in the same pass (exact, as `rba` does); their report entries replace the estimates' },
  { name: 'seq-len', type: 'string', arg: 'N', commands: A, field: 'seqLen', parse: int(1), help: 'sequence length for symbolic dims (synthetic / padding)' },
  { name: 'image-size', type: 'string', arg: 'N', commands: A, field: 'imageSize', parse: int(1), help: 'H and W for symbolic image dims' },
  { name: 'tokenizer', type: 'string', arg: 'PATH', commands: A, field: 'tokenizer', help: 'tokenizer.json for .txt data (default: beside the model)' },
  { name: 'resize', type: 'string', arg: 'N', commands: A, field: 'image.resize', parse: int(1), help: "images: shorter side resized to N before the crop" },
  { name: 'crop', type: 'string', arg: 'center|none', commands: A, field: 'image.crop', parse: oneOf(['center', 'none']), help: 'images: center crop (default) or resize straight to H×W' },
  { name: 'scale', type: 'string', arg: '0-1|0-255', commands: A, field: 'image.scale', parse: oneOf(['0-1', '0-255']), help: 'images: pixel scale (default 0-1)' },
  { name: 'mean', type: 'string', arg: 'a,b,c', commands: A, field: 'image.mean', parse: numbers, help: 'images: per-channel mean to subtract' },
  { name: 'std', type: 'string', arg: 'a,b,c', commands: A, field: 'image.std', parse: numbers, help: 'images: per-channel std to divide by' },
  { name: 'preset', type: 'string', arg: 'imagenet|none', commands: A, field: 'image.preset', parse: oneOf(['imagenet', 'none']), help: 'images: normalisation preset' },
  { name: 'color', type: 'string', arg: 'rgb|grayscale', commands: A, field: 'image.color', parse: oneOf(['rgb', 'grayscale']), help: 'images: colour mode' },
  { name: 'layout', type: 'string', arg: 'L', commands: AB, field: 'image.layout', parse: oneOf(['nchw', 'nhwc', 'ntd', 'tnd']), help: 'images: tensor layout nchw|nhwc; 3-D block outputs: ntd (batch first) or tnd (sequence first) when the graph cannot tell' },
  { name: 'interpolation', type: 'string', arg: 'K', commands: A, field: 'image.interpolation', parse: oneOf(['nearest', 'bilinear', 'bicubic', 'lanczos']), help: 'images: resampling kernel (default bilinear)' },
  { name: 'skip-bad-images', type: 'boolean', commands: A, field: 'image.skipBad', help: 'images: skip unreadable images (and say how many) instead of failing' },
  { name: 'device', type: 'string', arg: 'cpu|cuda', commands: A, field: 'device', parse: oneOf(['cpu', 'cuda']), help: "execution provider (cuda needs onnxruntime-node's GPU binaries)" },
  { name: 'threads', type: 'string', arg: 'N', commands: A, field: 'threads', parse: int(1), help: 'ONNX Runtime intra-op threads' },
  { name: 'shard', type: 'string', arg: 'K/N', commands: A, help: 'analyse shard K of N of the calibration set (sample ids split in N contiguous ranges); needs --partial' },
  { name: 'partial', type: 'string', arg: 'FILE', commands: A, help: "write the shard's partial state (merge them with 'blocklens merge')" },
  { name: 'out', type: 'string', arg: 'FILE', commands: OUT, help: 'write the JSON report' },
  { name: 'html', type: 'string', arg: 'FILE', commands: OUT, help: 'write the self-contained HTML report' },
  { name: 'json', type: 'boolean', commands: ['blocks'], help: 'print JSON' },
  { name: 'quiet', type: 'boolean', commands: OUT, help: 'no progress or summary' },
  { name: 'debug', type: 'boolean', commands: ALL, help: 'stack traces on errors' },
  { name: 'help', type: 'boolean', short: 'h', commands: ALL, help: 'this help' },
  { name: 'version', type: 'boolean', commands: ALL, help: 'print the version' },
];

/** The AnalyzeRequest for `model` from option values keyed by flag name (strings as typed, booleans). */
export function requestFromOptions(model: string, values: Record<string, string | boolean | undefined>): AnalyzeRequest {
  const req: Record<string, unknown> = { model };
  const image: Record<string, unknown> = {};
  for (const o of OPTIONS) {
    const raw = values[o.name];
    if (raw === undefined || raw === false || !o.field) continue;
    const v = o.type === 'boolean' ? true : o.parse ? o.parse(raw as string, o.name) : raw;
    if (o.field.startsWith('image.')) image[o.field.slice(6)] = v;
    else req[o.field] = v;
  }
  // --layout ntd|tnd is about block outputs, not images.
  if (image.layout === 'ntd' || image.layout === 'tnd') {
    req.layout = image.layout;
    delete image.layout;
  }
  if (Object.keys(image).length) req.image = image;
  return req as unknown as AnalyzeRequest;
}

/** Help text for the commands, generated from the table. */
export function usageText(): string {
  const line = (o: OptionSpec) => {
    const head = `  --${o.name}${o.arg ? ` ${o.arg}` : ''}${o.short ? `, -${o.short}` : ''}`;
    return head.length < 24 ? `${head.padEnd(24)}${o.help}` : `${head}\n${' '.repeat(24)}${o.help}`;
  };
  const section = (title: string, pick: (o: OptionSpec) => boolean) => [title, ...OPTIONS.filter(pick).map(line)].join('\n');
  return [
    'Usage:',
    '  blocklens blocks  MODEL [--json] [--blocks T,T,...] [--block-input T] [--granularity G] [--pooling P]',
    '  blocklens analyze MODEL [options] [--out report.json] [--html report.html]',
    '  blocklens analyze MODEL [options] --shard K/N --partial FILE',
    '  blocklens merge   FILE... [--out report.json] [--html report.html]',
    '',
    section('Analyze options:', (o) => o.commands.includes('analyze') && !!o.field && !o.field.startsWith('image.')),
    '',
    section('Image preprocessing (image folders):', (o) => !!o.field?.startsWith('image.')),
    '',
    section('Shards, output and general:', (o) => !o.field),
    '',
    'Exit status: 0 ok, 1 bad input, 2 usage error, 130 interrupted.',
  ].join('\n');
}
