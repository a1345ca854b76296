/**
 * An admin screen's list: a filter form (a status and one more field, kept in the route's query), the API's list
 * loaded page by page, and its table.
 */
import type { ComponentChildren } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { type Labels, useLang, useT } from '../i18n.js';
import { useApp } from './app-context.js';
import { common, statusLabel } from './labels.js';
import { ErrorNotice, Loading } from './notices.js';
import { href, navigate, type Route } from './route.js';
import { ScrollTable } from './scroll-table.js';
import { TextField } from './text-field.js';
import { Title } from './title.js';
import { nextPath } from './types.js';
import { useAsync } from './use-async.js';

export interface AdminListProps<T, P extends { next?: string }> {
  route: Route;
  /** The screen's segment under `#/admin`. */
  screen: string;
  statuses: readonly string[];
  statusLabels: Labels<string>;
  /** The filter beside the status: its query key, its input's id, label and hint. */
  filter: { key: string; id: string; label: string; hint: string };
  /** The screen's own words (its labels' `t`): `count` has a `{count}`. */
  t: (
    key: 'title' | 'intro' | 'filters' | 'allStatuses' | 'none' | 'table' | 'count',
    vars?: { count: number },
  ) => string;
  /** The API's list, and the parameters it is sent (the status's and the filter's, by their keys), in order. */
  apiPath: string;
  apiParams: readonly string[];
  itemsOf: (page: P) => T[];
  columns: string[];
  /** An item's row (or rows), keyed. */
  row: (item: T) => ComponentChildren;
}

export function AdminList<T, P extends { next?: string }>({
  route,
  screen,
  statuses,
  statusLabels,
  filter,
  t,
  apiPath,
  apiParams,
  itemsOf,
  columns,
  row,
}: AdminListProps<T, P>) {
  const { lang } = useLang();
  const tc = useT(common);
  const { api } = useApp();
  const status = route.query.get('status') ?? '';
  const value = route.query.get(filter.key) ?? '';
  const [form, setForm] = useState({ status, value });
  useEffect(() => setForm({ status, value }), [status, value]);
  const path = (() => {
    const p = new URLSearchParams();
    const applied: Record<string, string> = { status, [filter.key]: value };
    for (const k of apiParams) if (applied[k]) p.set(k, applied[k]);
    p.set('_count', '50');
    return `${apiPath}?${p}`;
  })();
  const [rows, setRows] = useState<{ path: string; items: T[]; next?: string }>({ path: '', items: [] });
  const first = useAsync(() => api.get<P>(path), [api, path]);
  useEffect(() => {
    if (first.data) setRows({ path, items: itemsOf(first.data), next: first.data.next });
  }, [first.data]);
  const [more, setMore] = useState<{ loading: boolean; error?: unknown }>({ loading: false });
  const loadMore = async () => {
    if (!rows.next) return;
    setMore({ loading: true });
    try {
      const page = await api.get<P>(nextPath(path, rows.next));
      setRows({ path, items: [...rows.items, ...itemsOf(page)], next: page.next });
      setMore({ loading: false });
    } catch (error) {
      setMore({ loading: false, error });
    }
  };
  const submit = (e: Event) => {
    e.preventDefault();
    const q: Record<string, string> = {};
    if (form.status) q.status = form.status;
    if (form.value.trim()) q[filter.key] = form.value.trim();
    navigate(href(['admin', screen], q));
  };
  const items = rows.path === path ? rows.items : [];

  return (
    <>
      <Title text={t('title')} />
      <p>{t('intro')}</p>
      <form class="form card filters" onSubmit={submit} aria-label={t('filters')}>
        <div class="form-grid">
          <div class="field">
            <label for="f-status">{tc('status')}</label>
            <select
              id="f-status"
              value={form.status}
              onChange={(e) => setForm({ ...form, status: (e.currentTarget as HTMLSelectElement).value })}
            >
              <option value="">{t('allStatuses')}</option>
              {statuses.map((s) => (
                <option key={s} value={s}>
                  {statusLabel(statusLabels, s, lang)}
                </option>
              ))}
            </select>
          </div>
          <TextField
            id={filter.id}
            label={filter.label}
            hint={filter.hint}
            value={form.value}
            onInput={(e) => setForm({ ...form, value: (e.currentTarget as HTMLInputElement).value })}
            wide
          />
        </div>
        <div class="actions">
          <button type="submit" class="button button-primary">
            {tc('apply')}
          </button>
          {(status || value) && (
            <a class="button" href={href(['admin', screen])}>
              {tc('clear')}
            </a>
          )}
        </div>
      </form>
      {first.loading && <Loading />}
      {first.error !== undefined && <ErrorNotice error={first.error} onRetry={first.reload} />}
      {first.data && items.length === 0 && <p>{t('none')}</p>}
      {items.length > 0 && (
        <>
          <p class="muted" role="status">
            {t('count', { count: items.length })}
          </p>
          <ScrollTable label={t('table')}>
            <table class="data-table">
              <thead>
                <tr>
                  {columns.map((c, i) => (
                    <th key={i} scope="col">
                      {c}
                    </th>
                  ))}
                </tr>
              </thead>
              <tbody>{items.map(row)}</tbody>
            </table>
          </ScrollTable>
          {more.error !== undefined && <ErrorNotice error={more.error} />}
          {rows.next && (
            <button type="button" class="button" onClick={loadMore} disabled={more.loading}>
              {more.loading ? tc('loading') : tc('showMore')}
            </button>
          )}
        </>
      )}
    </>
  );
}
