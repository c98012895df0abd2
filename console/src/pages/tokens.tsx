/**
 * The tokens page (tenant admins; a platform admin sees the platform's tokens, without the form): issue a token (name, holder key, scope, expiry, limits, proof of
 * possession), shown once with a copy button; list the tenant's tokens; revoke one.
 */
import { useState } from 'preact/hooks';
import { callApi } from '../api.js';
import { usePolledList } from '../changes.js';
import { ErrorNotice } from '../components/error-notice.js';
import { ListSection } from '../components/list-section.js';
import { useTranslate } from '../i18n/context.js';
import type { Session } from '../session.js';

interface Props {
  session: Session;
  /** The tenant whose tokens these are; absent for the platform's own (listed and revoked, never issued here). */
  tenantId: string | undefined;
  onUnauthenticated: () => void;
}

interface TokenRecord {
  token_id: string;
  name: string | null;
  scope: string[];
  subject_pubkey: string;
  proof_of_possession: boolean;
  expires_at: string;
  revoked_at: string | null;
}

/** The scopes a tenant admin may hand out (SPEC §5), widest first. */
const TENANT_SCOPES = ['service:tenant-admin', 'tenant:input', 'tenant:user', 'tenant:read', 'node:agent'] as const;
const EXPIRY_HOURS = [1, 8, 24, 24 * 7, 24 * 30, 24 * 90] as const;

export function TokensPage({ session, tenantId, onUnauthenticated }: Props) {
  const t = useTranslate();
  // Platform tokens are minted on the server's machine (`service-vm-tenant admin-token`), never through the API.
  const base = tenantId === undefined ? '/v1/admin/tokens' : `/v1/tenants/${encodeURIComponent(tenantId)}/tokens`;
  const { polled, changes } = usePolledList<TokenRecord>(session, `${base}?limit=1000`, onUnauthenticated);

  const revoke = (record: TokenRecord) => changes.run(() => callApi(session, 'DELETE', `${base}/${encodeURIComponent(record.token_id)}`));

  return (
    <>
      <h1>{t('tokens.title')}</h1>
      {tenantId !== undefined && <IssueToken session={session} base={base} onIssued={changes.reload} />}
      <ListSection
        id="token-list-title"
        title={t('tokens.list')}
        errors={[polled.error, changes.error]}
        loading={polled.value === undefined}
        columns={[t('tokens.name'), t('tokens.scope'), t('tokens.expires'), t('tokens.status'), t('vms.actions')]}
      >
        {(polled.value ?? []).map((record) => {
          const label = record.name ?? record.token_id;
          const revoked = record.revoked_at !== null;
          const expired = !revoked && Date.parse(record.expires_at) <= Date.now();
          return (
            <tr key={record.token_id}>
              <th scope="row">{label}</th>
              <td>{record.scope.join(', ')}</td>
              <td>{new Date(record.expires_at).toLocaleString()}</td>
              <td>{t(revoked ? 'tokens.revoked' : expired ? 'tokens.expired' : 'tokens.live')}</td>
              <td>
                <button type="button" disabled={revoked || expired} aria-label={t('tokens.revokeNamed', { name: label })} onClick={() => void revoke(record)}>
                  {t('tokens.revoke')}
                </button>
              </td>
            </tr>
          );
        })}
      </ListSection>
    </>
  );
}

function IssueToken({ session, base, onIssued }: { session: Session; base: string; onIssued: () => void }) {
  const t = useTranslate();
  const [name, setName] = useState('');
  const [subject, setSubject] = useState('');
  const [scope, setScope] = useState<string>('tenant:read');
  const [hours, setHours] = useState<number>(24);
  const [maxVms, setMaxVms] = useState('');
  // A caller whose own token demands proof of possession may issue only tokens that do (docs/api.md).
  const [pop, setPop] = useState(session.facts.pop);
  const [error, setError] = useState<unknown>(undefined);
  const [issued, setIssued] = useState<string | null>(null);
  const [copied, setCopied] = useState(false);

  const submit = async (event: Event) => {
    event.preventDefault();
    setError(undefined);
    setIssued(null);
    setCopied(false);
    try {
      const body: Record<string, unknown> = { subject_pubkey: subject.trim(), scope, expires_in_seconds: hours * 3600, proof_of_possession: pop };
      if (name.trim() !== '') body.name = name.trim();
      if (maxVms.trim() !== '') body.limits = { max_vms: Number(maxVms) };
      const answer = await callApi<{ token: string }>(session, 'POST', base, body);
      setIssued(answer.body.token);
      onIssued();
    } catch (caught) {
      setError(caught);
    }
  };

  const copy = async () => {
    if (issued === null) return;
    await navigator.clipboard.writeText(issued);
    setCopied(true);
  };

  return (
    <section aria-labelledby="token-issue-title" class="card">
      <h2 id="token-issue-title">{t('tokens.issue')}</h2>
      <form class="grid" onSubmit={(event) => void submit(event)}>
        <label for="token-name">{t('tokens.name')}</label>
        <input id="token-name" maxLength={64} value={name} onInput={(event) => setName(event.currentTarget.value)} />
        <label for="token-subject">{t('tokens.subject')}</label>
        <input id="token-subject" required spellcheck={false} autocomplete="off" value={subject} onInput={(event) => setSubject(event.currentTarget.value)} />
        <label for="token-scope">{t('tokens.scope')}</label>
        <select id="token-scope" value={scope} onChange={(event) => setScope(event.currentTarget.value)}>
          {TENANT_SCOPES.map((name) => (
            <option key={name} value={name}>
              {name}
            </option>
          ))}
        </select>
        <label for="token-expiry">{t('tokens.expiresIn')}</label>
        <select id="token-expiry" value={hours} onChange={(event) => setHours(Number(event.currentTarget.value))}>
          {EXPIRY_HOURS.map((h) => (
            <option key={h} value={h}>
              {h === 1 ? t('tokens.oneHour') : h < 24 ? t('tokens.hours', { n: h }) : h === 24 ? t('tokens.oneDay') : t('tokens.days', { n: h / 24 })}
            </option>
          ))}
        </select>
        <label for="token-max-vms">{t('tokens.maxVms')}</label>
        <input id="token-max-vms" type="number" min={0} value={maxVms} onInput={(event) => setMaxVms(event.currentTarget.value)} />
        <label for="token-pop">{t('tokens.pop')}</label>
        <input id="token-pop" type="checkbox" checked={pop} onChange={(event) => setPop(event.currentTarget.checked)} />
        {error !== undefined && <ErrorNotice error={error} />}
        <button type="submit">{t('tokens.issueSubmit')}</button>
      </form>
      {issued !== null && (
        <div class="issued" role="region" aria-labelledby="token-new-title">
          <h3 id="token-new-title">{t('tokens.newTitle')}</h3>
          <p class="notice">{t('tokens.newWarning')}</p>
          <label for="token-new">{t('tokens.newLabel')}</label>
          <textarea id="token-new" readOnly rows={4} value={issued} />
          <button type="button" onClick={() => void copy()}>
            {t('tokens.copy')}
          </button>
          <span role="status">{copied ? t('tokens.copied') : ''}</span>
        </div>
      )}
    </section>
  );
}
