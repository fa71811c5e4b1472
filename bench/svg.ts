// A minimal SVG writer: elements as strings, every attribute value and text escaped. Enough for the
// bench's charts (bench/chart-svg.ts) without a dependency.

export type Attrs = Record<string, string | number | undefined>;

/** Text and attribute values escaped for XML (quotes included: attributes are double-quoted). */
export function escapeXml(text: string): string {
  return text.replace(
    /[<>&"']/g,
    (c) => `&${{ '<': 'lt', '>': 'gt', '&': 'amp', '"': 'quot', "'": 'apos' }[c]};`,
  );
}

/** Numbers as short as they can be and still place a pixel: 12.346 -> "12.35". */
function num(v: number): string {
  return String(Math.round(v * 100) / 100);
}

function attrs(a: Attrs): string {
  let out = '';
  for (const [k, v] of Object.entries(a)) {
    if (v === undefined) continue;
    out += ` ${k}="${typeof v === 'number' ? num(v) : escapeXml(v)}"`;
  }
  return out;
}

/** `<name attrs>children</name>`, or `<name attrs/>` without children. Children are markup already. */
export function el(name: string, a: Attrs = {}, ...children: string[]): string {
  return children.length === 0
    ? `<${name}${attrs(a)}/>`
    : `<${name}${attrs(a)}>${children.join('')}</${name}>`;
}

/** A text element: its content is escaped here. */
export function text(a: Attrs, content: string): string {
  return `<text${attrs(a)}>${escapeXml(content)}</text>`;
}

/** A complete SVG document of `width` x `height` px. */
export function svgDocument(width: number, height: number, ...children: string[]): string {
  return `${el(
    'svg',
    {
      xmlns: 'http://www.w3.org/2000/svg',
      width,
      height,
      viewBox: `0 0 ${num(width)} ${num(height)}`,
      'font-family': 'system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif',
      'font-size': 11,
    },
    el('rect', { width, height, fill: '#ffffff' }),
    ...children,
  )}\n`;
}
