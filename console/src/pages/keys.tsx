/**
 * The keys page (platform admins): the token-signing keys and the ledger key, public halves only
 * (GET /v1/admin/keys). Read-only: keys are rotated and retired on a server's machine.
 */
import { useState } from 'preact/hooks';
import { callApi } from '../api.js';
import { ListSection } from '../components/list-section.js';
import { useTranslate } from '../i18n/context.js';
import { usePolling } from '../poll.js';
import type { Session } from '../session.js';

interface TokenKey {
  kid: string;
  state: 'active' | 'verifying' | 'retired';
  public_key: string;
  created_at: string;
  retired_at: string | null;
}

interface PlatformKeys {
  token_keys: TokenKey[];
  ledger_key: { name: string; key_id: string; verifier_key: string } | null;
}

interface Props {
  session: Session;
  onUnauthenticated: () => void;
}

/** A public key is 43 characters of base64url: the start names it well enough in a table. */
const shortened = (key: string) => `${key.slice(0, 12)}…`;

export function KeysPage({ session, onUnauthenticated }: Props) {
  const t = useTranslate();
  const polled = usePolling(async () => (await callApi<PlatformKeys>(session, 'GET', '/v1/admin/keys')).body, onUnauthenticated);
  const [copied, setCopied] = useState<string | null>(null);

  const copy = async (key: TokenKey) => {
    await navigator.clipboard.writeText(key.public_key);
    setCopied(key.kid);
  };

  return (
    <>
      <h1>{t('keys.title')}</h1>
      <p>
        {t('keys.intro')} <code>service-vm-tenant keys rotate</code>, <code>service-vm-tenant keys retire KID</code>
      </p>
      <ListSection
        id="token-key-list-title"
        title={t('keys.tokenKeys')}
        errors={[polled.error]}
        loading={polled.value === undefined}
        before={<p>{t('keys.tokenKeysIntro')}</p>}
        columns={[t('keys.kid'), t('keys.state'), t('keys.created'), t('keys.retired'), t('keys.publicKey')]}
      >
        {(polled.value?.token_keys ?? []).map((key) => (
          <tr key={key.kid}>
            <th scope="row">
              <code>{key.kid}</code>
            </th>
            <td>{t(`keys.state.${key.state}`)}</td>
            <td>{new Date(key.created_at).toLocaleString()}</td>
            <td>{key.retired_at === null ? '—' : new Date(key.retired_at).toLocaleString()}</td>
            <td>
              <code title={key.public_key}>{shortened(key.public_key)}</code>{' '}
              <button type="button" aria-label={t('keys.copyNamed', { kid: key.kid })} onClick={() => void copy(key)}>
                {t('tokens.copy')}
              </button>
            </td>
          </tr>
        ))}
      </ListSection>
      <span role="status">{copied === null ? '' : t('keys.copied', { kid: copied })}</span>
      <section class="card" aria-labelledby="ledger-key-title">
        <h2 id="ledger-key-title">{t('keys.ledgerKey')}</h2>
        {/* A failed read shows its error once, above. */}
        {polled.value === undefined ? (
          polled.error === undefined && <p aria-busy="true">{t('common.loading')}</p>
        ) : polled.value.ledger_key === null ? (
          <p>{t('keys.noLedgerKey')}</p>
        ) : (
          <>
            <p>{t('keys.ledgerKeyIntro')}</p>
            <dl class="key-facts">
              <dt>{t('keys.ledgerKeyName')}</dt>
              <dd>
                <code>{polled.value.ledger_key.name}</code>
              </dd>
              <dt>{t('keys.verifierKey')}</dt>
              <dd>
                <code id="ledger-verifier-key">{polled.value.ledger_key.verifier_key}</code>
              </dd>
            </dl>
          </>
        )}
      </section>
    </>
  );
}
