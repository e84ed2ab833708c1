// One uPlot line chart of a job's metrics against the step. The plot is made once and fed new
// data as events arrive; it follows its container's width. `data-points` on the figure is the
// number of steps drawn (read by the browser tests and handy when debugging).
import { useEffect, useRef } from "preact/hooks";
import uPlot from "uplot";
import { formatNumber } from "../lib/format.js";
import { html } from "../lib/html.js";

/** 3 significant digits, no trailing zeros: 7.5, 0.0035, 120 */
function tickLabel(t) {
  return t == null ? "" : String(Number(t.toPrecision(3)));
}

function options(title, series, width, logScale) {
  return {
    width,
    height: 220,
    title,
    scales: { x: { time: false }, y: logScale ? { distr: 3 } : {} },
    axes: [
      { label: "step", stroke: "#6b7280", grid: { stroke: "#e5e7eb" } },
      {
        stroke: "#6b7280",
        grid: { stroke: "#e5e7eb" },
        size: 60,
        values: (_u, ticks) => ticks.map(tickLabel),
      },
    ],
    series: [
      { label: "step" },
      ...series.map((s) => ({
        label: s.label,
        stroke: s.color,
        width: 2,
        spanGaps: true,
        value: (_u, v) => formatNumber(v),
      })),
    ],
    legend: { live: true },
  };
}

/** chart: {series, data} from chartData(), or null (nothing to draw yet). */
export function MetricChart({ id, title, chart, logScale = false, empty = "No data yet." }) {
  const holder = useRef(null);
  const plot = useRef(null);
  const seriesKey = chart ? chart.series.map((s) => s.key).join(",") : "";

  useEffect(() => {
    if (!chart || !holder.current) return;
    const width = Math.max(240, holder.current.clientWidth);
    plot.current = new uPlot(options(title, chart.series, width, logScale), chart.data, holder.current);
    const resize = new ResizeObserver(() => {
      const w = Math.max(240, holder.current?.clientWidth ?? width);
      if (plot.current && Math.abs(plot.current.width - w) > 2)
        plot.current.setSize({ width: w, height: 220 });
    });
    resize.observe(holder.current);
    return () => {
      resize.disconnect();
      plot.current?.destroy();
      plot.current = null;
    };
  }, [seriesKey, title, logScale]);

  useEffect(() => {
    if (chart && plot.current) plot.current.setData(chart.data);
  }, [chart]);

  const points = chart ? chart.data[0].length : 0;
  return html`
    <figure class="chart" id=${id} data-points=${points} aria-label=${`${title}: ${points} steps`}>
      ${chart ? null : html`<figcaption class="chart-empty">${title}: ${empty}</figcaption>`}
      <div class="chart-plot" ref=${holder}></div>
    </figure>
  `;
}
