/** A provider's record: the current version (or an older one) and the list of its versions. */
import { useMemo } from 'preact/hooks';
import { formatDate } from '../format.js';
import { type Labels, useLang, useT } from '../i18n.js';
import { RecordView } from '../record/record-view.js';
import { useApp } from '../components/app-context.js';
import { loadedFromBundle, loadedFromEntry, type LoadedRecord } from '../components/loaded.js';
import { ErrorNotice, Loading } from '../components/notices.js';
import { recordHeading } from '../components/record-item.js';
import { href } from '../components/route.js';
import { Title } from '../components/title.js';
import { useAsync } from '../components/use-async.js';

const labels: Labels<
  | 'back'
  | 'record'
  | 'versions'
  | 'version'
  | 'current'
  | 'received'
  | 'open'
  | 'shown'
  | 'notice'
  | 'noticeCurrent'
  | 'openCurrent'
  | 'noVersions'
> = {
  en: {
    back: 'Back to records',
    record: 'Record',
    versions: 'Versions',
    version: 'Version {n}',
    current: 'current',
    received: 'received {time}',
    open: 'Open version {n}',
    shown: 'Shown now',
    notice: 'Version {n} of {total}, received {time}. This is not the current version.',
    noticeCurrent: 'Version {n} of {total} (current), received {time}.',
    openCurrent: 'Open the current version',
    noVersions: 'No versions listed.',
  },
  hi: {
    back: 'रिकॉर्ड पर वापस जाएँ',
    record: 'रिकॉर्ड',
    versions: 'संस्करण',
    version: 'संस्करण {n}',
    current: 'वर्तमान',
    received: '{time} को प्राप्त',
    open: 'संस्करण {n} खोलें',
    shown: 'अभी दिखाया जा रहा',
    notice: '{total} में से संस्करण {n}, {time} को प्राप्त। यह वर्तमान संस्करण नहीं है।',
    noticeCurrent: '{total} में से संस्करण {n} (वर्तमान), {time} को प्राप्त।',
    openCurrent: 'वर्तमान संस्करण खोलें',
    noVersions: 'कोई संस्करण सूचीबद्ध नहीं।',
  },
};

interface Version {
  n: number;
  received?: string;
  record: LoadedRecord;
}

function versionsOf(entries: fhir4.BundleEntry[]): Version[] {
  const out: Version[] = [];
  for (const e of entries) {
    const record = loadedFromEntry(e);
    if (!record) continue;
    const n = Number(record.bundle.meta?.versionId ?? NaN);
    out.push({ n, received: e.response?.lastModified ?? record.bundle.meta?.lastUpdated, record });
  }
  return out.sort((a, b) => b.n - a.n);
}

export function RecordScreen({ id, vid }: { id: string; vid?: string }) {
  const { lang } = useLang();
  const t = useT(labels);
  const { api, careContextOf } = useApp();
  const base = `/fhir/Bundle/${encodeURIComponent(id)}`;
  const shown = useAsync(
    () => api.get<fhir4.Bundle>(vid ? `${base}/_history/${encodeURIComponent(vid)}` : base),
    [api, id, vid],
  );
  const history = useAsync(async () => versionsOf(await api.all(`${base}/_history?_count=50`)), [api, id]);
  const versions = history.data ?? [];
  const latest = versions[0]?.n;
  const bundle = shown.data;
  const shownN = bundle ? Number(bundle.meta?.versionId) : undefined;
  const shownVersion = versions.find((v) => v.n === shownN);
  const careContext = shownVersion?.record.careContext ?? careContextOf(id);
  const shownRecord = useMemo(
    () => shownVersion?.record ?? (bundle ? loadedFromBundle(bundle) : undefined),
    [shownVersion, bundle],
  );
  const title = shownRecord ? recordHeading(shownRecord, lang) : '';
  const isCurrent = shownN !== undefined && latest !== undefined && shownN === latest;

  return (
    <>
      <p class="back">
        <a href={href(['records'])}>← {t('back')}</a>
      </p>
      <Title text={title || t('record')} />
      {shown.loading && <Loading />}
      {shown.error !== undefined && <ErrorNotice error={shown.error} onRetry={shown.reload} />}
      {bundle && shownVersion && (
        <div class={`notice ${isCurrent ? 'notice-info' : 'notice-warning'}`}>
          <p>
            {t(isCurrent ? 'noticeCurrent' : 'notice', {
              n: shownVersion.n,
              total: latest ?? shownVersion.n,
              time: formatDate(shownVersion.received, lang, true),
            })}
          </p>
          {!isCurrent && (
            <p>
              <a href={href(['records', id])}>{t('openCurrent')}</a>
            </p>
          )}
        </div>
      )}
      <div class="record-layout">
        <div class="record-main">{bundle && <RecordView bundle={bundle} careContext={careContext} />}</div>
        <section class="versions" aria-labelledby="versions-title">
          <h2 id="versions-title">{t('versions')}</h2>
          {history.loading && <Loading />}
          {history.error !== undefined && <ErrorNotice error={history.error} onRetry={history.reload} />}
          {history.data && versions.length === 0 && <p>{t('noVersions')}</p>}
          {versions.length > 0 && (
            <ol class="version-list" reversed>
              {versions.map((v) => {
                const here = v.n === shownN;
                const label = (
                  <>
                    <span class="version-n">
                      {t('version', { n: v.n })}
                      {v.n === latest && <span class="tag-current"> ({t('current')})</span>}
                    </span>
                    <span class="version-at">{t('received', { time: formatDate(v.received, lang, true) })}</span>
                  </>
                );
                return (
                  <li key={v.n} class={here ? 'version-here' : undefined}>
                    {here ? (
                      <span class="version-item" aria-current="page">
                        {label}
                        <span class="small muted">{t('shown')}</span>
                      </span>
                    ) : (
                      <a
                        class="version-item"
                        href={v.n === latest ? href(['records', id]) : href(['records', id, '_history', String(v.n)])}
                      >
                        {label}
                      </a>
                    )}
                  </li>
                );
              })}
            </ol>
          )}
        </section>
      </div>
    </>
  );
}
