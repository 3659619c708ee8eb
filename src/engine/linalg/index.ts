export { abtSync, atbSync, jsMatmul, type MatmulBackend } from './matmul.js';
export { createNormalEquations, createOrtMatmul, matmulModel, type NormalEquations, type OrtMatmulOptions } from './ort-matmul.js';
