/** Loading, refusals and status badges: words first, colour only as a second cue. */
import type { ComponentChildren } from 'preact';
import { ApiError } from '../api.js';
import { useLang, useT } from '../i18n.js';
import { common, consentStatusLabels, statusLabel, transferStatusLabels } from './labels.js';
import type { ConsentStatus } from './types.js';

export function Loading({ text }: { text?: string }) {
  const t = useT(common);
  return (
    <p class="loading" role="status">
      {text ?? t('loading')}
    </p>
  );
}

/** What went wrong, as the API said it (its OperationOutcome's diagnostics), or that the server was not reached. */
export function errorMessage(error: unknown, noNetwork: string): string {
  if (error instanceof ApiError) return error.message;
  if (error instanceof TypeError) return noNetwork;
  return error instanceof Error ? error.message : String(error);
}

export function ErrorNotice({
  error,
  onRetry,
  children,
}: {
  error: unknown;
  onRetry?: () => void;
  children?: ComponentChildren;
}) {
  const t = useT(common);
  return (
    <div class="notice notice-error" role="alert">
      <p>{errorMessage(error, t('noNetwork'))}</p>
      {children}
      {onRetry && (
        <button type="button" class="button" onClick={onRetry}>
          {t('retry')}
        </button>
      )}
    </div>
  );
}

export function ConsentBadge({ status }: { status: ConsentStatus }) {
  const { lang } = useLang();
  return <span class={`badge badge-${status.toLowerCase()}`}>{statusLabel(consentStatusLabels, status, lang)}</span>;
}

export function TransferBadge({ status }: { status: string }) {
  const { lang } = useLang();
  return <span class={`badge badge-${status.toLowerCase()}`}>{statusLabel(transferStatusLabels, status, lang)}</span>;
}
