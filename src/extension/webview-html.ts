// The HTML shell of BlockLens webviews: a strict content security policy with a per-load nonce,
// nothing remote, scripts and styles only from the extension's build output. No `vscode`
// import: the caller passes the webview's cspSource and the resource URIs, so this is tested in
// plain Node.
import { randomBytes } from 'node:crypto';

export function makeNonce(): string {
  return randomBytes(18).toString('base64').replace(/[^A-Za-z0-9]/g, '');
}

export function escapeHtml(value: unknown): string {
  return String(value).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

export function contentSecurityPolicy(cspSource: string, nonce: string): string {
  return [
    "default-src 'none'",
    `img-src ${cspSource} data: blob:`,
    `style-src ${cspSource} 'nonce-${nonce}'`,
    `font-src ${cspSource}`,
    `script-src 'nonce-${nonce}'`,
    "connect-src 'none'",
    "frame-src 'none'",
    "form-action 'none'",
    "base-uri 'none'",
  ].join('; ');
}

export interface ShellOptions {
  cspSource: string;
  nonce: string;
  title: string;
  /** Script URIs from the build output (webview.asWebviewUri). */
  scripts: string[];
  styles: string[];
  /** Trusted, already-escaped markup for the body. */
  body: string;
  /** An optional inline script (runs only with the nonce). */
  inlineScript?: string;
  /** An optional inline stylesheet (allowed only with the nonce). */
  inlineStyle?: string;
}

export function webviewShell(o: ShellOptions): string {
  const n = escapeHtml(o.nonce);
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${escapeHtml(contentSecurityPolicy(o.cspSource, o.nonce))}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(o.title)}</title>
${o.styles.map((s) => `<link rel="stylesheet" nonce="${n}" href="${escapeHtml(s)}">`).join('\n')}
${o.inlineStyle ? `<style nonce="${n}">${o.inlineStyle}</style>` : ''}
</head>
<body>
${o.body}
${o.scripts.map((s) => `<script nonce="${n}" src="${escapeHtml(s)}"></script>`).join('\n')}
${o.inlineScript ? `<script nonce="${n}">${o.inlineScript}</script>` : ''}
</body>
</html>`;
}
