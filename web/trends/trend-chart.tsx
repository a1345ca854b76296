/**
 * Trends: one small line chart per series of numeric observations (trends.ts), drawn as inline SVG with
 * presentation attributes and classes (no style attributes): the values joined in date order, each point marked,
 * points outside the range (or flagged) drawn as a triangle or diamond and named in words, the reference range
 * shaded when known, the axes labelled with the lowest and highest value and the first and last date. Each chart
 * has a title and a description for screen readers, and its values in a table behind a "Values" disclosure.
 */
import { useId, useMemo } from 'preact/hooks';
import './trends.css';
import { type Labels, useLang, useT } from '../i18n.js';
import { formatDate } from '../format.js';
import { timeOf } from '../record/fhir.js';
import { observationSeries, type Series, type SeriesPoint } from './trends.js';

const LABELS: Labels<
  | 'trends'
  | 'values'
  | 'date'
  | 'value'
  | 'flag'
  | 'high'
  | 'low'
  | 'abnormal'
  | 'range'
  | 'rangeShaded'
  | 'summary'
  | 'latest'
  | 'unit'
  | 'scroll'
> = {
  en: {
    trends: 'Trends',
    values: 'Values',
    date: 'Date',
    value: 'Value',
    flag: 'Flag',
    high: 'High',
    low: 'Low',
    abnormal: 'Abnormal',
    range: 'Reference range',
    rangeShaded: 'Shaded: reference range {range}',
    summary: '{n} values from {first} to {last}, between {min} and {max} {unit}.',
    latest: 'Latest',
    unit: 'Unit',
    scroll: 'Values of {name} (scrolls sideways)',
  },
  hi: {
    trends: 'रुझान',
    values: 'मान',
    date: 'तारीख़',
    value: 'मान',
    flag: 'संकेत',
    high: 'उच्च',
    low: 'निम्न',
    abnormal: 'असामान्य',
    range: 'सामान्य सीमा',
    rangeShaded: 'छायांकित: सामान्य सीमा {range}',
    summary: '{first} से {last} तक {n} मान, {min} और {max} {unit} के बीच।',
    latest: 'नवीनतम',
    unit: 'इकाई',
    scroll: '{name} के मान (बगल में स्क्रॉल करें)',
  },
};

const W = 320;
const H = 168;
const M = { left: 46, right: 12, top: 10, bottom: 26 };
const SYMBOL = { high: '▲', low: '▼', abnormal: '◆' } as const;

/** A value for an axis label (at most 2 decimals). */
const fmt = (n: number, lang: string) =>
  new Intl.NumberFormat(lang === 'hi' ? 'hi-IN' : 'en-IN', { maximumFractionDigits: 2 }).format(n);
/** A value as recorded (every decimal). */
const exact = (n: number, lang: string) =>
  new Intl.NumberFormat(lang === 'hi' ? 'hi-IN' : 'en-IN', { maximumFractionDigits: 20 }).format(n);

function rangeLabel(range: Series['range'], lang: string): string {
  if (!range) return '';
  if (range.low !== undefined && range.high !== undefined) return `${fmt(range.low, lang)}–${fmt(range.high, lang)}`;
  if (range.low !== undefined) return `≥ ${fmt(range.low, lang)}`;
  if (range.high !== undefined) return `≤ ${fmt(range.high, lang)}`;
  return range.text ?? '';
}

/** A point's mark: a circle, or for a flagged value a triangle up (high), down (low) or a diamond (abnormal). */
function Mark({ x, y, flag }: { x: number; y: number; flag?: SeriesPoint['flag'] }) {
  const s = 5;
  if (flag === 'high')
    return (
      <polygon class="tr-point tr-point-flag" points={`${x},${y - s} ${x + s},${y + s - 1} ${x - s},${y + s - 1}`} />
    );
  if (flag === 'low')
    return (
      <polygon class="tr-point tr-point-flag" points={`${x},${y + s} ${x + s},${y - s + 1} ${x - s},${y - s + 1}`} />
    );
  if (flag === 'abnormal')
    return (
      <polygon class="tr-point tr-point-flag" points={`${x},${y - s} ${x + s},${y} ${x},${y + s} ${x - s},${y}`} />
    );
  return <circle class="tr-point" cx={x} cy={y} r={3.5} />;
}

function Chart({ series }: { series: Series }) {
  const t = useT(LABELS);
  const { lang } = useLang();
  const titleId = useId();
  const descId = useId();
  const headId = useId();
  const pts = series.points;
  const times = pts.map((p) => timeOf(p.date));
  const values = pts.map((p) => p.value);
  const bounds = [...values];
  if (series.range?.low !== undefined) bounds.push(series.range.low);
  if (series.range?.high !== undefined) bounds.push(series.range.high);
  let lo = Math.min(...bounds);
  let hi = Math.max(...bounds);
  if (lo === hi) {
    const pad = Math.abs(lo) * 0.1 || 1;
    lo -= pad;
    hi += pad;
  } else {
    const pad = (hi - lo) * 0.08;
    lo -= pad;
    hi += pad;
  }
  const t0 = Math.min(...times);
  const t1 = Math.max(...times);
  const inset = 8; // so marks at the ends are not cut by the axis or the edge
  const x = (tm: number) => M.left + inset + ((tm - t0) / (t1 - t0 || 1)) * (W - M.left - M.right - 2 * inset);
  const y = (v: number) => M.top + (1 - (v - lo) / (hi - lo)) * (H - M.top - M.bottom);
  const minV = Math.min(...values);
  const maxV = Math.max(...values);
  // The labels of the highest and lowest value, kept at least a line apart.
  let maxLabelY = y(maxV) + 4;
  let minLabelY = y(minV) + 4;
  if (minV !== maxV && minLabelY - maxLabelY < 12) {
    const mid = (minLabelY + maxLabelY) / 2;
    maxLabelY = mid - 6;
    minLabelY = mid + 6;
  }
  const first = formatDate(pts[0].date, lang, false);
  const last = formatDate(pts[pts.length - 1].date, lang, false);
  const latest = pts[pts.length - 1];
  const flagText = (f?: SeriesPoint['flag']) => (f ? `${SYMBOL[f]} ${t(f)}` : '');
  const description = t('summary', {
    n: pts.length,
    first,
    last,
    min: fmt(minV, lang),
    max: fmt(maxV, lang),
    unit: series.unit,
  });
  const range = series.range;
  const bandTop = range?.high !== undefined ? y(range.high) : M.top;
  const bandBottom = range?.low !== undefined ? y(range.low) : H - M.bottom;
  const flags = new Set(pts.map((p) => p.flag).filter(Boolean) as NonNullable<SeriesPoint['flag']>[]);
  return (
    <figure class="tr-chart" aria-labelledby={headId}>
      <figcaption>
        <h3 id={headId} class="tr-title">
          {series.label}
        </h3>
        <p class="tr-latest">
          {t('latest')}:{' '}
          <strong>
            {exact(latest.value, lang)} {series.unit}
          </strong>{' '}
          {latest.flag && <span class={`tr-flag tr-flag-${latest.flag}`}>{flagText(latest.flag)}</span>}{' '}
          <span class="tr-muted">({formatDate(latest.date, lang, false)})</span>
        </p>
      </figcaption>
      <svg
        class="tr-svg"
        viewBox={`0 0 ${W} ${H}`}
        role="img"
        aria-labelledby={`${titleId} ${descId}`}
        focusable="false"
      >
        <title id={titleId}>
          {series.label} ({series.unit})
        </title>
        <desc id={descId}>{description}</desc>
        {range && (range.low !== undefined || range.high !== undefined) && (
          <rect
            class="tr-range"
            x={M.left}
            y={Math.max(M.top, Math.min(bandTop, bandBottom))}
            width={W - M.left - M.right}
            height={Math.max(1, Math.abs(bandBottom - bandTop))}
            fill="#dcefdc"
          />
        )}
        <line class="tr-axis" x1={M.left} y1={M.top} x2={M.left} y2={H - M.bottom} stroke="#595959" />
        <line class="tr-axis" x1={M.left} y1={H - M.bottom} x2={W - M.right} y2={H - M.bottom} stroke="#595959" />
        <line class="tr-tick" x1={M.left - 4} y1={y(maxV)} x2={M.left} y2={y(maxV)} stroke="#595959" />
        <line class="tr-tick" x1={M.left - 4} y1={y(minV)} x2={M.left} y2={y(minV)} stroke="#595959" />
        <text class="tr-label" x={M.left - 6} y={maxLabelY} text-anchor="end">
          {fmt(maxV, lang)}
        </text>
        {minV !== maxV && (
          <text class="tr-label" x={M.left - 6} y={minLabelY} text-anchor="end">
            {fmt(minV, lang)}
          </text>
        )}
        <text class="tr-label" x={M.left} y={H - 8} text-anchor="start">
          {first}
        </text>
        <text class="tr-label" x={W - M.right} y={H - 8} text-anchor="end">
          {last}
        </text>
        <polyline
          class="tr-line"
          fill="none"
          stroke="#0b57d0"
          stroke-width={2}
          points={pts.map((p, i) => `${x(times[i]).toFixed(1)},${y(p.value).toFixed(1)}`).join(' ')}
        />
        {pts.map((p, i) => (
          <g key={i}>
            <title>
              {formatDate(p.date, lang)}: {exact(p.value, lang)} {series.unit} {flagText(p.flag)}
            </title>
            <Mark x={Number(x(times[i]).toFixed(1))} y={Number(y(p.value).toFixed(1))} flag={p.flag} />
          </g>
        ))}
      </svg>
      <p class="tr-legend">
        {range && (range.low !== undefined || range.high !== undefined) && (
          <span>
            <span class="tr-swatch" aria-hidden="true" />{' '}
            {t('rangeShaded', { range: `${rangeLabel(range, lang)} ${series.unit}` })}
          </span>
        )}
        {[...flags].map((f) => (
          <span key={f} class={`tr-flag tr-flag-${f}`}>
            {flagText(f)}
          </span>
        ))}
      </p>
      <details class="tr-values">
        <summary>{t('values')}</summary>
        <div class="tr-table-wrap" tabIndex={0} role="group" aria-label={t('scroll', { name: series.label })}>
          <table class="tr-table">
            <caption class="visually-hidden">
              {series.label} ({series.unit})
            </caption>
            <thead>
              <tr>
                <th scope="col">{t('date')}</th>
                <th scope="col">
                  {t('value')} ({series.unit})
                </th>
                <th scope="col">{t('flag')}</th>
              </tr>
            </thead>
            <tbody>
              {pts.map((p, i) => (
                <tr key={i}>
                  <th scope="row">{formatDate(p.date, lang)}</th>
                  <td>{exact(p.value, lang)}</td>
                  <td>{flagText(p.flag)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
        {range && rangeLabel(range, lang) && (
          <p class="tr-muted">
            {t('range')}: {rangeLabel(range, lang)} {series.unit}
          </p>
        )}
      </details>
    </figure>
  );
}

/** Charts of the numeric observations of `records`; nothing when no code was recorded twice. */
export function Trends(props: { records: { bundle: fhir4.Bundle; recordId?: string }[] }) {
  const t = useT(LABELS);
  const headingId = useId();
  const series = useMemo(() => observationSeries(props.records), [props.records]);
  if (!series.length) return null;
  return (
    <section class="tr" aria-labelledby={headingId}>
      <h2 id={headingId}>{t('trends')}</h2>
      <div class="tr-grid">
        {series.map((s) => (
          <Chart key={s.key} series={s} />
        ))}
      </div>
    </section>
  );
}
