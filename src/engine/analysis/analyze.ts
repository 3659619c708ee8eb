// Moved: the analyze job lives in src/engine/jobs, introspection in src/engine/model.
// Kept so existing imports keep working.
export { analyzeModel, analyzeShard, reportFileName, DEFAULT_MAX_SAMPLES, type AnalyzeOptions, type Progress } from '../jobs/analyze.js';
export { modelInputs, calibrationHints } from '../model/introspect.js';
