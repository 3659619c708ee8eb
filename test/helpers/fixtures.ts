// Shared access to the committed fixture corpus (test/fixtures, made by generate.py).
import { readFileSync } from 'node:fs';
import * as path from 'node:path';

export const FIXTURES = path.resolve(__dirname, '..', 'fixtures');
export const REPO = path.resolve(__dirname, '..', '..');

export interface FixtureModel {
  file: string;
  opset: number;
  pooling: string;
  calibration: Record<string, string>;
  blocks: { route: string; count: number; scopes: string[]; outputs: string[]; input: string; width?: number; widths?: number[] };
  reference_stats?: {
    pooling: string; n_samples: number; br: (number | null)[]; cka_linear_biased: number[][];
    relative_mse: (number | null)[]; block_influence: (number | null)[]; cosine: (number | null)[][]; cka_unbiased: number[][];
    msrs: { value: number; normalized: number };
    dr: { block: number; fractions: number[]; mean: number[]; std: number[]; value: number | null };
    probe?: { full_accuracy: number; mean: number[]; std: number[]; value: number | null; train_samples: number; test_samples: number; classes: number };
  };
  identity_block?: number;
}

export interface Manifest {
  models: Record<string, FixtureModel>;
  broken: unknown;
}

export const manifest: Manifest = JSON.parse(readFileSync(path.join(FIXTURES, 'manifest.json'), 'utf8'));

export function fixture(rel: string): string {
  return path.join(FIXTURES, rel);
}

export const brokenExpected: Record<string, string> = JSON.parse(readFileSync(path.join(FIXTURES, 'broken', 'expected.json'), 'utf8'));
