/** The sessions page (tenant admins): each token in use, with when and from where; End revokes its token. */
import { useState } from 'preact/hooks';
import { callApi } from '../api.js';
import { ErrorNotice } from '../components/error-notice.js';
import { useTranslate } from '../i18n/context.js';
import { usePolling } from '../poll.js';
import type { Session } from '../session.js';

interface SessionRecord {
  token_id: string;
  name: string | null;
  scope: string[];
  first_seen: string;
  last_seen: string;
  last_address: string | null;
  request_count: number;
  revoked: boolean;
}

interface Props {
  session: Session;
  onUnauthenticated: () => void;
}

export function SessionsPage({ session, onUnauthenticated }: Props) {
  const t = useTranslate();
  const [refresh, setRefresh] = useState(0);
  const polled = usePolling(
    async () => (await callApi<{ items: SessionRecord[] }>(session, 'GET', '/v1/sessions?limit=1000')).body.items,
    onUnauthenticated,
    undefined,
    refresh,
  );
  const [actionError, setActionError] = useState<unknown>(undefined);

  const end = async (record: SessionRecord) => {
    setActionError(undefined);
    try {
      await callApi(session, 'DELETE', `/v1/sessions/${encodeURIComponent(record.token_id)}`);
      setRefresh((n) => n + 1);
    } catch (error) {
      setActionError(error);
    }
  };

  return (
    <>
      <h1>{t('sessions.title')}</h1>
      <section class="card" aria-labelledby="session-list-title">
        <h2 id="session-list-title">{t('sessions.list')}</h2>
        {polled.error !== undefined && <ErrorNotice error={polled.error} />}
        {actionError !== undefined && <ErrorNotice error={actionError} />}
        {polled.value === undefined ? (
          <p aria-busy="true">{t('common.loading')}</p>
        ) : polled.value.length === 0 ? (
          <p>{t('sessions.empty')}</p>
        ) : (
          <div class="table-scroll" tabIndex={0} role="region" aria-labelledby="session-list-title">
            <table>
              <thead>
                <tr>
                  <th scope="col">{t('tokens.name')}</th>
                  <th scope="col">{t('tokens.scope')}</th>
                  <th scope="col">{t('sessions.lastSeen')}</th>
                  <th scope="col">{t('sessions.address')}</th>
                  <th scope="col">{t('sessions.requests')}</th>
                  <th scope="col">{t('vms.actions')}</th>
                </tr>
              </thead>
              <tbody>
                {polled.value.map((record) => {
                  const label = record.name ?? record.token_id;
                  return (
                    <tr key={record.token_id}>
                      <th scope="row">{label}</th>
                      <td>{record.scope.join(', ')}</td>
                      <td>{new Date(record.last_seen).toLocaleString()}</td>
                      <td>{record.last_address ?? ''}</td>
                      <td>{record.request_count}</td>
                      <td>
                        {record.revoked ? (
                          t('sessions.ended')
                        ) : (
                          <button type="button" aria-label={t('sessions.endNamed', { name: label })} onClick={() => void end(record)}>
                            {t('sessions.end')}
                          </button>
                        )}
                      </td>
                    </tr>
                  );
                })}
              </tbody>
            </table>
          </div>
        )}
      </section>
    </>
  );
}
