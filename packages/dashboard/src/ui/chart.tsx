/**
 * Deliveries per minute (bars: succeeded below, failed on top) and the failure
 * rate (a line on its own 0–100 % scale), drawn as plain SVG: no chart library
 * for one picture. Colours come from CSS classes (the CSP allows no inline style).
 */
import type { MinuteCount } from "../api/stats.js";

const WIDTH = 720;
const HEIGHT = 220;
const PAD = { left: 40, right: 40, top: 12, bottom: 28 };

export function DeliveryChart(props: { minutes: readonly MinuteCount[]; title: string }) {
  const { minutes } = props;
  const plotWidth = WIDTH - PAD.left - PAD.right;
  const plotHeight = HEIGHT - PAD.top - PAD.bottom;
  const peak = Math.max(1, ...minutes.map((m) => m.succeeded + m.failed + m.other));
  const step = plotWidth / Math.max(1, minutes.length);
  const y = (value: number) => PAD.top + plotHeight - (value / peak) * plotHeight;
  const rateY = (rate: number) => PAD.top + plotHeight - rate * plotHeight;
  const line = minutes
    .map((m, i) => {
      const done = m.succeeded + m.failed;
      return done === 0 ? undefined : `${PAD.left + i * step + step / 2},${rateY(m.failed / done)}`;
    })
    .filter(Boolean)
    .join(" ");
  const total = minutes.reduce((sum, m) => sum + m.succeeded + m.failed + m.other, 0);
  const failed = minutes.reduce((sum, m) => sum + m.failed, 0);
  const label = (index: number) => {
    const at = minutes[index];
    return at ? new Date(at.minute).toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" }) : "";
  };

  return (
    <figure class="chart">
      <svg viewBox={`0 0 ${WIDTH} ${HEIGHT}`} role="img" aria-labelledby="chart-title chart-desc">
        <title id="chart-title">{props.title}</title>
        <desc id="chart-desc">
          {total} deliveries, {failed} failed, over {minutes.length} minutes; peak {peak} per minute.
        </desc>
        <line class="axis" x1={PAD.left} y1={PAD.top + plotHeight} x2={WIDTH - PAD.right} y2={PAD.top + plotHeight} />
        <text class="tick" x={PAD.left - 6} y={PAD.top + 8} text-anchor="end">
          {peak}
        </text>
        <text class="tick" x={PAD.left - 6} y={PAD.top + plotHeight} text-anchor="end">
          0
        </text>
        <text class="tick rate" x={WIDTH - PAD.right + 6} y={PAD.top + 8}>
          100%
        </text>
        <text class="tick rate" x={WIDTH - PAD.right + 6} y={PAD.top + plotHeight}>
          0%
        </text>
        {minutes.map((m, i) => {
          const x = PAD.left + i * step;
          const width = Math.max(1, step - 1);
          const okTop = y(m.succeeded + m.other);
          const failTop = y(m.succeeded + m.other + m.failed);
          return (
            <g key={m.minute}>
              <rect class="bar-ok" x={x} y={okTop} width={width} height={PAD.top + plotHeight - okTop} />
              {m.failed > 0 && <rect class="bar-failed" x={x} y={failTop} width={width} height={okTop - failTop} />}
            </g>
          );
        })}
        {line && <polyline class="rate-line" points={line} fill="none" />}
        <text class="tick" x={PAD.left} y={HEIGHT - 8}>
          {label(0)}
        </text>
        <text class="tick" x={WIDTH - PAD.right} y={HEIGHT - 8} text-anchor="end">
          {label(minutes.length - 1)}
        </text>
      </svg>
      <figcaption>
        <span class="key key-ok" /> delivered <span class="key key-failed" /> failed <span class="key key-rate" />{" "}
        failure rate (right scale)
      </figcaption>
    </figure>
  );
}
