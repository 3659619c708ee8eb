// The report: schema (the contract), validation, and the self-contained HTML page.
export * from './schema';
export { validateReport, parseReport, ReportValidationError } from './validate';
export { renderReportHtml, renderWebviewShell, loadWebviewAssets, escapeHtml } from './html';
