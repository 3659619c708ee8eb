// Finds the .onnx files a Python source names: the target of `torch.onnx.export(…, "x.onnx")`
// and any other `.onnx` path literal. Pure text scanning (no `vscode` import; tested in Node).

export interface OnnxReference {
  /** The literal's text, unquoted. */
  path: string;
  /** Line (0-based) the CodeLens goes on: the `torch.onnx.export(` line, else the literal's. */
  line: number;
  /** Line (0-based) of the literal itself. */
  literalLine: number;
  /** Whether the literal is the file of a `torch.onnx.export(` call. */
  export: boolean;
}

const LITERAL = /(?<prefix>\b[rRbBfF]{0,2})?(?<q>"|')(?<body>(?:(?!\k<q>)[^\\\n]|\\.)*?\.onnx)\k<q>/g;
const EXPORT_CALL = /\btorch\.onnx\.(?:export|dynamo_export)\s*\(/g;

function lineStarts(text: string): number[] {
  const starts = [0];
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) === 10) starts.push(i + 1);
  return starts;
}

function lineOf(starts: number[], offset: number): number {
  let lo = 0;
  let hi = starts.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (starts[mid]! <= offset) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/** Offset of the parenthesis closing the call that opens at `open` (the `(`), or the text's end. */
function callEnd(text: string, open: number): number {
  let depth = 0;
  let quote: string | undefined;
  for (let i = open; i < text.length; i++) {
    const c = text[i]!;
    if (quote) {
      if (c === '\\') i++;
      else if (c === quote) quote = undefined;
      continue;
    }
    if (c === '"' || c === "'") quote = c;
    else if (c === '#') while (i < text.length && text[i] !== '\n') i++;
    else if (c === '(') depth++;
    else if (c === ')' && --depth === 0) return i;
  }
  return text.length;
}

export function findOnnxReferences(text: string): OnnxReference[] {
  const starts = lineStarts(text);
  const calls: { start: number; end: number }[] = [];
  for (const m of text.matchAll(EXPORT_CALL)) {
    const open = m.index! + m[0].length - 1;
    calls.push({ start: m.index!, end: callEnd(text, open) });
  }
  const out: OnnxReference[] = [];
  const seen = new Set<string>();
  for (const m of text.matchAll(LITERAL)) {
    if (/[fFbB]/.test(m.groups?.prefix ?? '')) continue; // f-strings and bytes are not paths we can read
    const offset = m.index!;
    // Skip literals inside comments.
    const ls = starts[lineOf(starts, offset)]!;
    const before = text.slice(ls, offset);
    if (/#/.test(before.replace(/(["'])(?:(?!\1)[^\\]|\\.)*\1/g, ''))) continue;
    const raw = m.groups!.body!;
    const p = /r/i.test(m.groups?.prefix ?? '') ? raw : raw.replace(/\\(.)/g, '$1');
    const call = calls.find((c) => c.start < offset && offset < c.end);
    const literalLine = lineOf(starts, offset);
    const line = call ? lineOf(starts, call.start) : literalLine;
    const key = `${line}\0${p}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push({ path: p, line, literalLine, export: !!call });
  }
  return out;
}
