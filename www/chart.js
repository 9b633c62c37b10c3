// Small dependency-free SVG line charts for the demo page.

const NS = 'http://www.w3.org/2000/svg';

function el(name, attrs = {}, text) {
  const node = document.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

/** About `count` round tick values from 0 (or `lo`) to `hi`. */
function ticks(lo, hi, count) {
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw);
  const out = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) out.push(t);
  return out;
}

/**
 * Draws `series` (`[{label, className, points: [[x, y], …]}]`) into `svg` at its
 * current width; redraws itself when the window is resized.
 */
export function lineChart(svg, series, { xLabel, yLabel, formatX = String, formatY = String }) {
  svg._chart = [series, { xLabel, yLabel, formatX, formatY }];
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
  if (x1 - x0 < 1e-9) [x0, x1] = [x0 - 1, x1 + 1];
  const yMax = Math.max(...all.map((p) => p[1])) * 1.08 || 1;
  const sx = (x) => m.left + ((x - x0) / (x1 - x0)) * (width - m.left - m.right);
  const sy = (y) => height - m.bottom - (y / yMax) * (height - m.top - m.bottom);

  for (const t of ticks(0, yMax, 4)) {
    svg.append(el('line', { x1: m.left, x2: width - m.right, y1: sy(t), y2: sy(t), class: 'grid' }));
    svg.append(el('text', { x: m.left - 6, y: sy(t) + 4, 'text-anchor': 'end', class: 'tick' }, formatY(t)));
  }
  const xt = ticks(x0, x1, Math.max(2, Math.floor((width - m.left) / 90)));
  for (const t of xt) {
    svg.append(el('text', { x: sx(t), y: height - m.bottom + 16, 'text-anchor': 'middle', class: 'tick' }, formatX(t)));
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
