/** The viewer's consents: live ones first, then those that ended (their status and when; their terms are erased). */
import { type Labels, useT } from '../i18n.js';
import { useApp } from '../components/app-context.js';
import { ConsentTerms, consentPatient } from '../components/consent-summary.js';
import { common } from '../components/labels.js';
import { ConsentBadge, ErrorNotice, Loading } from '../components/notices.js';
import { href } from '../components/route.js';
import { Title } from '../components/title.js';
import { type Consent, type ConsentPage, nextPath } from '../components/types.js';
import { useAsync } from '../components/use-async.js';

export const consentListLabels: Labels<
  'title' | 'intro' | 'active' | 'ended' | 'none' | 'noneActive' | 'patientUnknown' | 'open'
> = {
  en: {
    title: 'Consents',
    intro: 'Consents patients have granted to your facility. Open one to see its records.',
    active: 'Usable consents',
    ended: 'Ended consents',
    none: 'No consent has been granted to your facility yet.',
    noneActive: 'No consent can be used now.',
    patientUnknown: 'Patient not recorded',
    open: 'Open consent',
  },
  hi: {
    title: 'सहमतियाँ',
    intro: 'मरीज़ों द्वारा आपके संस्थान को दी गई सहमतियाँ। रिकॉर्ड देखने के लिए किसी एक को खोलें।',
    active: 'उपयोग योग्य सहमतियाँ',
    ended: 'समाप्त सहमतियाँ',
    none: 'आपके संस्थान को अभी तक कोई सहमति नहीं दी गई है।',
    noneActive: 'अभी कोई सहमति उपयोग योग्य नहीं है।',
    patientUnknown: 'मरीज़ दर्ज नहीं',
    open: 'सहमति खोलें',
  },
};

const LIST_PATH = '/consents?status=GRANTED,REVOKED,EXPIRED&_count=100';

function ConsentCard({ consent }: { consent: Consent }) {
  const t = useT(consentListLabels);
  const tc = useT(common);
  const patient = consentPatient(consent);
  return (
    <li class={`card consent-card consent-${consent.effectiveStatus.toLowerCase()}`}>
      <div class="consent-card-head">
        <h3>
          <a class="card-link" href={href(['consents', consent.id])}>
            {patient || t('patientUnknown')}
          </a>
        </h3>
        <ConsentBadge status={consent.effectiveStatus} />
      </div>
      <ConsentTerms consent={consent} compact />
      <p class="small muted id-line">
        {tc('consentId')}: <span class="id">{consent.id}</span>
      </p>
    </li>
  );
}

export function ConsentList() {
  const { api } = useApp();
  const t = useT(consentListLabels);
  const list = useAsync(async () => {
    const consents: Consent[] = [];
    let path: string | undefined = LIST_PATH;
    for (let page = 0; path && page < 20; page++) {
      const body: ConsentPage = await api.get<ConsentPage>(path);
      consents.push(...body.consents);
      path = body.next ? nextPath(LIST_PATH, body.next) : undefined;
    }
    return consents;
  }, [api]);
  const consents = list.data ?? [];
  const active = consents.filter((c) => c.effectiveStatus === 'GRANTED');
  const ended = consents.filter((c) => c.effectiveStatus !== 'GRANTED');
  return (
    <>
      <Title text={t('title')} />
      <p>{t('intro')}</p>
      {list.loading && <Loading />}
      {list.error !== undefined && <ErrorNotice error={list.error} onRetry={list.reload} />}
      {list.data && consents.length === 0 && <p>{t('none')}</p>}
      {list.data && consents.length > 0 && (
        <>
          <section aria-labelledby="consents-active">
            <h2 id="consents-active">{t('active')}</h2>
            {active.length === 0 ? (
              <p>{t('noneActive')}</p>
            ) : (
              <ul class="cards">
                {active.map((c) => (
                  <ConsentCard key={c.id} consent={c} />
                ))}
              </ul>
            )}
          </section>
          {ended.length > 0 && (
            <section aria-labelledby="consents-ended">
              <h2 id="consents-ended">{t('ended')}</h2>
              <ul class="cards">
                {ended.map((c) => (
                  <ConsentCard key={c.id} consent={c} />
                ))}
              </ul>
            </section>
          )}
        </>
      )}
    </>
  );
}
