// What counts as a clean error for the fuzz harness and the corpus: an error a user can act on
// (named, one line, about the input), as opposed to a bug in BlockLens (a TypeError from reading
// a property of undefined, a stack overflow, an out-of-range allocation).

export interface CaseRequest {
  id: number;
  dir: string;
  model: string;
  samples: number;
  batch: number;
  seed: number;
}

export interface CaseResult {
  id: number;
  outcome: 'ok' | 'error' | 'crash';
  stage: 'decode' | 'detect' | 'analyze';
  blocks?: number;
  errorName?: string;
  message?: string;
  /** The error carries the file it concerns (`file`) or names it in its message. */
  named?: boolean;
}

/** JavaScript's own error types: thrown by a bug, never on purpose for bad input. */
const INTERNAL = new Set(['TypeError', 'RangeError', 'ReferenceError', 'SyntaxError', 'EvalError', 'URIError', 'AssertionError', 'InternalError']);
const INTERNAL_MESSAGE = /Cannot read propert|is not a function|is not iterable|is not defined|Maximum call stack|Invalid array length|Array buffer allocation failed|Invalid typed array length|out of memory|undefined \(reading/i;

export function classifyError(e: unknown, file: string): Pick<CaseResult, 'outcome' | 'errorName' | 'message' | 'named'> {
  if (!(e instanceof Error)) return { outcome: 'crash', errorName: typeof e, message: String(e).slice(0, 300) };
  const err = e as Error & { file?: string };
  const message = (err.message ?? '').split('\n')[0]!.slice(0, 300);
  const internal = INTERNAL.has(err.name) || INTERNAL.has(err.constructor?.name) || INTERNAL_MESSAGE.test(err.message ?? '') || message.trim() === '';
  const base = file.split('/').pop()!;
  const named = err.file !== undefined || (err.message ?? '').includes(base);
  return { outcome: internal ? 'crash' : 'error', errorName: err.name, message, named };
}
