// The hourly chart: answered and missed calls per local hour, stacked bars in one SVG.
import { svg } from './dom.js';

const WIDTH = 1300; // about the panel's shape on a wall screen and on a laptop
const HEIGHT = 200;
const LEFT = 34;
const BOTTOM = 22;
const TOP = 10;

function niceMax(value) {
  if (value <= 5) return 5;
  const step = 10 ** Math.floor(Math.log10(value));
  return Math.ceil(value / step) * step;
}

/** hours: [{hour: "09:00", incoming, answered, missed}]; labels: {answered, missed}. */
export function hourlyChart(hours, labels) {
  const top = niceMax(Math.max(0, ...hours.map((hour) => hour.answered + hour.missed)));
  const plotHeight = HEIGHT - BOTTOM - TOP;
  const slot = (WIDTH - LEFT) / Math.max(hours.length, 1);
  const y = (count) => TOP + plotHeight - (count / top) * plotHeight;
  const parts = [];
  for (const fraction of [0, 0.5, 1]) {
    const count = Math.round(top * fraction);
    parts.push(svg('line', { x1: LEFT, x2: WIDTH, y1: y(count), y2: y(count), class: 'grid' }));
    parts.push(svg('text', { x: LEFT - 6, y: y(count) + 4, class: 'axis', 'text-anchor': 'end' }, count));
  }
  hours.forEach((hour, index) => {
    const x = LEFT + index * slot + slot * 0.15;
    const width = slot * 0.7;
    const answeredTop = y(hour.answered);
    const missedTop = y(hour.answered + hour.missed);
    const title = `${hour.hour}: ${labels.answered} ${hour.answered}, ${labels.missed} ${hour.missed}`;
    parts.push(
      svg('rect', { x, y: answeredTop, width, height: TOP + plotHeight - answeredTop, class: 'bar-answered' },
        svg('title', {}, title)),
      svg('rect', { x, y: missedTop, width, height: answeredTop - missedTop, class: 'bar-missed' },
        svg('title', {}, title)),
    );
    if (index % 2 === 0) {
      parts.push(svg('text', { x: x + width / 2, y: HEIGHT - 6, class: 'axis', 'text-anchor': 'middle' },
        hour.hour.slice(0, 2)));
    }
  });
  return svg('svg', {
    viewBox: `0 0 ${WIDTH} ${HEIGHT}`,
    class: 'chart',
    role: 'img',
    'aria-label': `${labels.answered} / ${labels.missed}`,
  }, ...parts);
}
