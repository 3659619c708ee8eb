import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';

import { REPO } from '../helpers/fixtures';

// The renderer runs in a browser: it may import its own files, browser packages, and from the
// host side only the protocol and the report schema (DESIGN §3). tsc's `include` does not stop an
// import from reaching further, so this test does.
const ALLOWED_OUTSIDE = new Set(['src/protocol/webview.ts', 'src/engine/report/schema.ts']);
const ALLOWED_PACKAGES = /^(d3-(scale|scale-chromatic|axis|selection)|@vscode-elements\/elements\/dist\/[\w-]+\/index\.js)$/;

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? sources(path.join(dir, e.name)) : e.name.endsWith('.ts') ? [path.join(dir, e.name)] : []));
}

describe('webview boundary', () => {
  it('the renderer imports only its own files, the protocol, the report schema and its browser packages', () => {
    const files = sources(path.join(REPO, 'webview/src'));
    assert.ok(files.length >= 5);
    for (const file of files) {
      const text = readFileSync(file, 'utf8');
      for (const m of text.matchAll(/^\s*(?:import|export)\s[^'"]*?from\s+['"]([^'"]+)['"]|^\s*import\s+['"]([^'"]+)['"]/gm)) {
        const spec = (m[1] ?? m[2])!;
        if (spec.startsWith('.')) {
          const target = path.relative(REPO, path.resolve(path.dirname(file), spec)).replace(/\.js$/, '.ts');
          const inside = target.startsWith('webview/');
          assert.ok(inside || ALLOWED_OUTSIDE.has(target), `${path.relative(REPO, file)} imports ${target}`);
        } else {
          assert.match(spec, ALLOWED_PACKAGES, `${path.relative(REPO, file)} imports package ${spec}`);
        }
      }
    }
  });

  it('the protocol and the schema import nothing but each other (no node:, no vscode)', () => {
    for (const rel of ALLOWED_OUTSIDE) {
      const text = readFileSync(path.join(REPO, rel), 'utf8');
      const specs = [...text.matchAll(/from\s+['"]([^'"]+)['"]/g)].map((m) => m[1]!);
      for (const s of specs) assert.match(s, /^\.\.?\/.*(schema|webview)(\.js)?$/, `${rel} imports ${s}`);
    }
  });
});
