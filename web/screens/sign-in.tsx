/** Signing in: OpenID Connect (a plain link: the browser goes to the issuer and back) and, in development, a form. */
import { useState } from 'preact/hooks';
import { type Session, devSignIn, signInOptions } from '../api.js';
import { type Labels, useT } from '../i18n.js';
import { Title } from '../components/title.js';
import { ErrorNotice, Loading } from '../components/notices.js';
import { roleLabels } from '../components/labels.js';
import { useAsync } from '../components/use-async.js';

const labels: Labels<
  | 'title'
  | 'intro'
  | 'oidc'
  | 'dev'
  | 'devNote'
  | 'role'
  | 'facility'
  | 'facilityHint'
  | 'submit'
  | 'signingIn'
  | 'none'
  | 'expired'
  | 'denied'
  | 'failed'
  | 'unavailable'
  | 'roleError'
  | 'facilityError'
  | 'sessionEnded'
  | 'signedOut'
> = {
  en: {
    title: 'Sign in',
    intro: 'Sign in to see the records your role and facility may see.',
    oidc: "Sign in with your organisation's account",
    dev: 'Development sign-in',
    devNote: 'For development and testing only: no password is asked.',
    role: 'Role',
    facility: 'Facility id',
    facilityHint: 'Letters, digits and . _ : @ -, for example HIP-1 or HIU-1.',
    submit: 'Sign in',
    signingIn: 'Signing in…',
    none: 'This server offers no way to sign in to the page. Ask the administrator.',
    expired: 'The sign-in took too long or was not started here. Please sign in again.',
    denied: 'Sign-in was cancelled at the identity provider.',
    failed: 'Sign-in failed. Please try again.',
    unavailable: 'The identity provider did not answer. Please try again in a few minutes.',
    roleError: 'Your account has no role for this page (provider, viewer or administrator). Ask the administrator.',
    facilityError: 'Your account names no facility. Ask the administrator.',
    sessionEnded: 'Your session has ended. Please sign in again.',
    signedOut: 'You have signed out.',
  },
  hi: {
    title: 'साइन इन करें',
    intro: 'अपनी भूमिका और संस्थान के लिए अनुमत रिकॉर्ड देखने के लिए साइन इन करें।',
    oidc: 'अपने संगठन के खाते से साइन इन करें',
    dev: 'डेवलपमेंट साइन-इन',
    devNote: 'केवल डेवलपमेंट और परीक्षण के लिए: कोई पासवर्ड नहीं माँगा जाता।',
    role: 'भूमिका',
    facility: 'संस्थान आईडी',
    facilityHint: 'अक्षर, अंक और . _ : @ -, जैसे HIP-1 या HIU-1।',
    submit: 'साइन इन करें',
    signingIn: 'साइन इन हो रहा है…',
    none: 'यह सर्वर पृष्ठ में साइन इन का कोई तरीका नहीं देता। प्रशासक से पूछें।',
    expired: 'साइन-इन में बहुत समय लगा या यहाँ से शुरू नहीं हुआ। कृपया फिर से साइन इन करें।',
    denied: 'पहचान प्रदाता पर साइन-इन रद्द किया गया।',
    failed: 'साइन-इन विफल रहा। कृपया फिर से कोशिश करें।',
    unavailable: 'पहचान प्रदाता ने उत्तर नहीं दिया। कृपया कुछ मिनट बाद फिर से कोशिश करें।',
    roleError: 'आपके खाते में इस पृष्ठ के लिए कोई भूमिका (प्रदाता, दर्शक या प्रशासक) नहीं है। प्रशासक से पूछें।',
    facilityError: 'आपके खाते में कोई संस्थान नहीं है। प्रशासक से पूछें।',
    sessionEnded: 'आपका सत्र समाप्त हो गया है। कृपया फिर से साइन इन करें।',
    signedOut: 'आपने साइन आउट कर दिया है।',
  },
};

const ERRORS: Record<string, 'expired' | 'denied' | 'failed' | 'unavailable' | 'roleError' | 'facilityError'> = {
  expired: 'expired',
  unavailable: 'unavailable',
  denied: 'denied',
  failed: 'failed',
  role: 'roleError',
  facility: 'facilityError',
};

export type SignInNotice = 'sessionEnded' | 'signedOut' | null;

export function SignIn({
  error,
  notice,
  onSignedIn,
}: {
  /** The `error` the OpenID Connect callback sent back (`#/sign-in?error=…`). */
  error: string | null;
  notice: SignInNotice;
  onSignedIn: () => Promise<void>;
}) {
  const t = useT(labels);
  const tr = useT(roleLabels);
  const options = useAsync(() => signInOptions(), []);
  const [role, setRole] = useState<Session['role']>('hiu');
  const [facility, setFacility] = useState('');
  const [busy, setBusy] = useState(false);
  const [failure, setFailure] = useState<unknown>(null);

  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setFailure(null);
    try {
      await devSignIn(role, facility.trim());
      await onSignedIn();
    } catch (err) {
      setFailure(err);
    } finally {
      setBusy(false);
    }
  };

  const o = options.data;
  const callbackError = error ? (ERRORS[error] ?? 'failed') : null;
  return (
    <div class="sign-in">
      <Title text={t('title')} />
      <p>{t('intro')}</p>
      {notice && !callbackError && (
        <div class="notice notice-info" role="status">
          <p>{t(notice)}</p>
        </div>
      )}
      {callbackError && (
        <div class="notice notice-error" role="alert">
          <p>{t(callbackError)}</p>
        </div>
      )}
      {options.loading && <Loading />}
      {options.error !== undefined && <ErrorNotice error={options.error} onRetry={options.reload} />}
      {o && !o.oidc && !o.devSignIn && <p>{t('none')}</p>}
      {o?.oidc && (
        <p>
          <a class="button button-primary" href="/auth/oidc/start">
            {t('oidc')}
          </a>
        </p>
      )}
      {o?.devSignIn && (
        <form class="form card" onSubmit={submit}>
          <h2>{t('dev')}</h2>
          <p class="hint">{t('devNote')}</p>
          <div class="field">
            <label for="sign-in-role">{t('role')}</label>
            <select
              id="sign-in-role"
              value={role}
              onChange={(e) => setRole((e.currentTarget as HTMLSelectElement).value as Session['role'])}
            >
              {o.roles.map((r) => (
                <option key={r} value={r}>
                  {tr(r)}
                </option>
              ))}
            </select>
          </div>
          <div class="field">
            <label for="sign-in-facility">{t('facility')}</label>
            <input
              id="sign-in-facility"
              name="facility"
              required
              autocomplete="organization"
              maxLength={128}
              aria-describedby="sign-in-facility-hint"
              value={facility}
              onInput={(e) => setFacility((e.currentTarget as HTMLInputElement).value)}
            />
            <p class="hint" id="sign-in-facility-hint">
              {t('facilityHint')}
            </p>
          </div>
          {failure !== null && <ErrorNotice error={failure} />}
          <button type="submit" class="button button-primary" disabled={busy}>
            {busy ? t('signingIn') : t('submit')}
          </button>
        </form>
      )}
    </div>
  );
}
