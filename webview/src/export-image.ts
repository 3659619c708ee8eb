// Heatmap export: a standalone SVG whose colours and fonts are the resolved computed styles (so
// it looks the same outside the page and the theme), and a PNG drawn from it on a canvas.

const PROPS = ['fill', 'stroke', 'stroke-width', 'stroke-dasharray', 'opacity', 'font-size', 'font-family', 'font-weight', 'visibility'] as const;

export function standaloneSvg(svg: SVGSVGElement, background: string): string {
  const clone = svg.cloneNode(true) as SVGSVGElement;
  const src = [svg, ...svg.querySelectorAll('*')];
  const dst = [clone, ...clone.querySelectorAll('*')];
  const styles = src.map((el) => getComputedStyle(el));
  src.forEach((el, k) => {
    const out = dst[k] as Element;
    const cs = styles[k]!;
    const parent = el.parentElement ? styles[src.indexOf(el.parentElement)] : undefined;
    for (const p of PROPS) {
      const v = cs.getPropertyValue(p);
      // Write what differs from the parent (presentation attributes inherit like CSS does).
      if (v && (!parent || parent.getPropertyValue(p) !== v || k === 0)) out.setAttribute(p, v);
    }
    out.removeAttribute('tabindex');
    out.removeAttribute('class');
  });
  for (const ring of clone.querySelectorAll('[visibility="hidden"]')) ring.remove();
  clone.setAttribute('xmlns', 'http://www.w3.org/2000/svg');
  const vb = svg.viewBox.baseVal;
  const bg = document.createElementNS('http://www.w3.org/2000/svg', 'rect');
  bg.setAttribute('x', String(vb.x));
  bg.setAttribute('y', String(vb.y));
  bg.setAttribute('width', String(vb.width));
  bg.setAttribute('height', String(vb.height));
  bg.setAttribute('fill', background);
  clone.insertBefore(bg, clone.firstChild);
  return `<?xml version="1.0" encoding="UTF-8"?>\n${new XMLSerializer().serializeToString(clone)}`;
}

/** PNG (base64, no data: prefix) of an SVG document at `scale`× its viewBox size. */
export async function svgToPngBase64(svgText: string, width: number, height: number, scale = 2): Promise<string> {
  const img = new Image();
  const loaded = new Promise<void>((resolve, reject) => {
    img.onload = () => resolve();
    img.onerror = () => reject(new Error('the SVG could not be loaded as an image'));
  });
  img.src = `data:image/svg+xml;charset=utf-8,${encodeURIComponent(svgText)}`;
  await loaded;
  const canvas = document.createElement('canvas');
  canvas.width = Math.round(width * scale);
  canvas.height = Math.round(height * scale);
  const ctx = canvas.getContext('2d');
  if (!ctx) throw new Error('no 2D canvas');
  ctx.drawImage(img, 0, 0, canvas.width, canvas.height);
  return canvas.toDataURL('image/png').replace(/^data:image\/png;base64,/, '');
}
