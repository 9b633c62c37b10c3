// Small dependency-free SVG line charts for the demo page.

const NS = 'http://www.w3.org/2000/svg';

function el(name, attrs = {}, text) {
  const node = document.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

/**
 * About `count` round tick values (steps of 1, 2 or 5 times a power of ten) from `lo`
 * to `hi`; `integer` axes (counts) step by whole numbers only.
 */
function ticks(lo, hi, count, integer) {
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  let step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw);
  if (integer) step = Math.max(1, Math.round(step));
  const values = [];
  // i * step rather than a running sum, which drifts (0.1 + 0.2 …).
  for (let i = Math.ceil(lo / step - 1e-9); i * step <= hi + step * 1e-9; i++) values.push(i * step);
  return { values, step };
}

/** A tick label with as many decimals as the step needs, so that labels differ. */
const tickLabel = (v, step) => v.toFixed(Math.max(0, -Math.floor(Math.log10(step) + 1e-9)));

/** Labels along an axis, leaving out any that would repeat its neighbour's text. */
function labels({ values, step }, format) {
  const out = [];
  for (const v of values) {
    const text = format(v, step);
    if (text !== out.at(-1)?.text) out.push({ v, text });
  }
  return out;
}

/**
 * Draws `series` (`[{label, className, points: [[x, y], …]}]`) into `svg` at its
 * current width; redraws itself when the window is resized. `xInteger`: x values are
 * counts (ticks at whole numbers); `formatX`/`formatY(value, step)` write tick labels.
 */
export function lineChart(svg, series, { xLabel, yLabel, xInteger = false, formatX = tickLabel, formatY = tickLabel }) {
  svg._chart = [series, { xLabel, yLabel, xInteger, formatX, formatY }];
  const width = Math.max(svg.clientWidth || 0, 280);
  const height = Math.max(svg.clientHeight || 0, 160);
  const m = { left: 62, right: 12, top: 26, bottom: 34 };
  svg.replaceChildren();
  svg.setAttribute('viewBox', `0 0 ${width} ${height}`);

  const all = series.flatMap((s) => s.points);
  if (all.length === 0) {
    svg.append(el('text', { x: width / 2, y: height / 2, 'text-anchor': 'middle', class: 'chart-empty' }, 'no data yet'));
    return;
  }
  const xs = all.map((p) => p[0]);
  let [x0, x1] = [Math.min(...xs), Math.max(...xs)];
  if (x1 - x0 < 1e-9) [x0, x1] = xInteger ? [x0 - 0.5, x1 + 0.5] : [x0 - 1, x1 + 1];
  const yMax = Math.max(...all.map((p) => p[1])) * 1.08 || 1;
  const sx = (x) => m.left + ((x - x0) / (x1 - x0)) * (width - m.left - m.right);
  const sy = (y) => height - m.bottom - (y / yMax) * (height - m.top - m.bottom);

  for (const { v, text } of labels(ticks(0, yMax, 4, false), formatY)) {
    svg.append(el('line', { x1: m.left, x2: width - m.right, y1: sy(v), y2: sy(v), class: 'grid' }));
    svg.append(el('text', { x: m.left - 6, y: sy(v) + 4, 'text-anchor': 'end', class: 'tick y' }, text));
  }
  const xt = ticks(x0, x1, Math.max(2, Math.floor((width - m.left) / 90)), xInteger);
  for (const { v, text } of labels(xt, formatX)) {
    svg.append(el('text', { x: sx(v), y: height - m.bottom + 16, 'text-anchor': 'middle', class: 'tick x' }, text));
  }
  svg.append(el('line', { x1: m.left, x2: width - m.right, y1: sy(0), y2: sy(0), class: 'axis' }));
  svg.append(el('text', { x: width - m.right, y: height - 4, 'text-anchor': 'end', class: 'axis-label' }, xLabel));
  svg.append(el('text', { x: 4, y: 14, class: 'axis-label' }, yLabel));

  let legendX = width - m.right;
  for (const s of [...series].reverse()) {
    const label = el('text', { x: legendX, y: 14, 'text-anchor': 'end', class: `legend ${s.className}` }, `■ ${s.label}`);
    svg.append(label);
    legendX -= label.getComputedTextLength() + 14;
  }
  for (const s of series) {
    if (s.points.length === 0) continue;
    const d = s.points.map(([x, y], i) => `${i ? 'L' : 'M'}${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join('');
    svg.append(el('path', { d, class: `line ${s.className}` }));
    if (s.points.length === 1) {
      const [x, y] = s.points[0];
      svg.append(el('circle', { cx: sx(x), cy: sy(y), r: 3, class: `dot ${s.className}` }));
    }
  }
}

let resizeTimer;
addEventListener('resize', () => {
  clearTimeout(resizeTimer);
  resizeTimer = setTimeout(() => {
    for (const svg of document.querySelectorAll('svg.chart')) if (svg._chart) lineChart(svg, ...svg._chart);
  }, 100);
});
