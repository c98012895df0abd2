/** The sessions page (tenant admins): each token in use, with when and from where; End revokes its token. */
import { callApi } from '../api.js';
import { usePolledList } from '../changes.js';
import { ListSection } from '../components/list-section.js';
import { useTranslate } from '../i18n/context.js';
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
  const { polled, changes } = usePolledList<SessionRecord>(session, '/v1/sessions?limit=1000', onUnauthenticated);

  const end = (record: SessionRecord) => changes.run(() => callApi(session, 'DELETE', `/v1/sessions/${encodeURIComponent(record.token_id)}`));

  return (
    <>
      <h1>{t('sessions.title')}</h1>
      <ListSection
        id="session-list-title"
        title={t('sessions.list')}
        errors={[polled.error, changes.error]}
        loading={polled.value === undefined}
        empty={polled.value?.length === 0 ? t('sessions.empty') : undefined}
        columns={[t('tokens.name'), t('tokens.scope'), t('sessions.lastSeen'), t('sessions.address'), t('sessions.requests'), t('vms.actions')]}
      >
        {(polled.value ?? []).map((record) => {
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
      </ListSection>
    </>
  );
}
