/**
 * An Attachment as recorded: its data (base64) as a Blob of its content type behind an object URL (revoked when the
 * view goes), a PDF viewable in place (the page's CSP allows frames of blob: URLs only) and downloadable, an image
 * shown, anything else downloadable. An attachment with only a `url` is outside the store: the URL is shown as text,
 * a link only when it is https:, and never fetched by the page.
 */
import { useEffect, useMemo, useState } from 'preact/hooks';
import { useLang, useT } from '../i18n.js';
import { formatDate } from '../format.js';
import { isObj, num, str } from './fhir.js';
import { L } from './labels.js';

const EXTENSIONS: Record<string, string> = {
  'application/pdf': 'pdf',
  'image/png': 'png',
  'image/jpeg': 'jpg',
  'image/jpg': 'jpg',
  'image/gif': 'gif',
  'image/webp': 'webp',
  'text/plain': 'txt',
  'application/dicom': 'dcm',
  'application/json': 'json',
  'application/fhir+json': 'json',
  'text/xml': 'xml',
  'application/xml': 'xml',
};
const SHOWN_IMAGES = new Set(['image/png', 'image/jpeg', 'image/jpg', 'image/gif', 'image/webp']);

/** Bytes of base64 text (whitespace ignored), or null when it is not base64. */
export function decodeBase64(data: string): Uint8Array<ArrayBuffer> | null {
  const clean = data.replace(/\s+/g, '');
  if (!clean || !/^[A-Za-z0-9+/_-]*={0,2}$/.test(clean)) return null;
  try {
    const bin = atob(clean.replace(/-/g, '+').replace(/_/g, '/'));
    const bytes = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    return bytes;
  } catch {
    return null;
  }
}

export function sizeText(bytes: number, lang: 'en' | 'hi'): string {
  const f = (n: number) =>
    new Intl.NumberFormat(lang === 'hi' ? 'hi-IN' : 'en-IN', { maximumFractionDigits: 1 }).format(n);
  if (bytes < 1024) return `${f(bytes)} B`;
  if (bytes < 1024 * 1024) return `${f(bytes / 1024)} KB`;
  return `${f(bytes / 1024 / 1024)} MB`;
}

/** A file name for downloading: the title's safe characters, with the content type's extension. */
function fileName(title: string | undefined, contentType: string): string {
  const ext = EXTENSIONS[contentType] ?? 'bin';
  const base = (title ?? 'attachment')
    .replace(/[^\p{L}\p{N}._ -]+/gu, '')
    .trim()
    .slice(0, 80)
    .replace(/\s+/g, '-');
  const name = base || 'attachment';
  return name.toLowerCase().endsWith(`.${ext}`) ? name : `${name}.${ext}`;
}

/** Whether a URL is an absolute https: URL (the only kind shown as a link). */
function isHttps(link: string): boolean {
  try {
    return new URL(link).protocol === 'https:';
  } catch {
    return false;
  }
}

/** An object URL for `blob` while the component is shown. */
function useObjectUrl(blob: Blob | null): string | null {
  const [url, setUrl] = useState<string | null>(null);
  useEffect(() => {
    if (!blob) {
      setUrl(null);
      return;
    }
    const u = URL.createObjectURL(blob);
    setUrl(u);
    return () => {
      URL.revokeObjectURL(u);
    };
  }, [blob]);
  return url;
}

export function AttachmentView({ attachment }: { attachment: fhir4.Attachment | undefined }) {
  const t = useT(L);
  const { lang } = useLang();
  const a = isObj(attachment) ? attachment : undefined;
  const contentType = (str(a?.contentType) ?? 'application/octet-stream').split(';')[0].trim().toLowerCase();
  const data = str(a?.data);
  const bytes = useMemo(() => (data ? decodeBase64(data) : null), [data]);
  // Shown in place only as what the page can show safely: a PDF (in Chromium's viewer) or a raster image. Every
  // download is typeless (application/octet-stream): a blob: URL is of this origin, so an HTML or SVG attachment
  // opened from its link as its own document would run its script here, without the page's policy.
  const viewable = contentType === 'application/pdf' || SHOWN_IMAGES.has(contentType);
  const shownBlob = useMemo(
    () => (bytes && viewable ? new Blob([bytes], { type: contentType }) : null),
    [bytes, contentType, viewable],
  );
  const savedBlob = useMemo(() => (bytes ? new Blob([bytes], { type: 'application/octet-stream' }) : null), [bytes]);
  const shownUrl = useObjectUrl(shownBlob);
  const url = useObjectUrl(savedBlob);
  const [viewing, setViewing] = useState(false);
  if (!a) return null;

  const title = str(a.title)?.trim();
  const shownTitle = title ?? t('untitled');
  const size = num(a.size) ?? bytes?.length;
  const meta = [
    contentType !== 'application/octet-stream' || str(a.contentType) ? contentType : undefined,
    size !== undefined ? sizeText(size, lang) : undefined,
    str(a.creation) ? formatDate(str(a.creation), lang) : undefined,
    str(a.language),
  ].filter(Boolean);

  let body;
  if (data) {
    if (!bytes) body = <p class="rv-note">{t('badData')}</p>;
    else if (!url) body = null;
    else {
      const download = (
        <a class="rv-button" href={url} download={fileName(title, contentType)}>
          {t('download')}
          <span class="visually-hidden">: {shownTitle}</span>
        </a>
      );
      if (contentType === 'application/pdf') {
        body = (
          <>
            <div class="rv-actions">
              <button type="button" class="rv-button" aria-expanded={viewing} onClick={() => setViewing(!viewing)}>
                {viewing ? t('hide') : t('view')}
                <span class="visually-hidden">: {shownTitle}</span>
              </button>
              {download}
            </div>
            {viewing && shownUrl && <iframe class="rv-pdf" src={shownUrl} title={shownTitle} />}
          </>
        );
      } else if (SHOWN_IMAGES.has(contentType)) {
        body = (
          <>
            {shownUrl && <img class="rv-image" src={shownUrl} alt={shownTitle} />}
            <div class="rv-actions">{download}</div>
          </>
        );
      } else {
        body = <div class="rv-actions">{download}</div>;
      }
    }
  } else if (str(a.url)) {
    const link = str(a.url)!.trim();
    const https = isHttps(link);
    body = (
      <>
        <p class="rv-url">
          {https ? (
            <a href={link} rel="noopener noreferrer nofollow" target="_blank" referrerpolicy="no-referrer">
              {link}
            </a>
          ) : (
            <code>{link}</code>
          )}
        </p>
        <p class="rv-note">{t('outsideStore')}</p>
      </>
    );
  } else {
    body = <p class="rv-note">{t('noContent')}</p>;
  }

  return (
    <div class="rv-attachment">
      <p class="rv-attachment-title">
        <strong>{shownTitle}</strong>
        {meta.length > 0 && <span class="rv-muted"> ({meta.join(', ')})</span>}
      </p>
      {body}
    </div>
  );
}
