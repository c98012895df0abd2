/**
 * The nodes page: each fleet node's state, capacity and what is allocated on it (a platform admin
 * sees every pool's); remove one, after a confirmation (its VMs become failed).
 */
import { ListSection } from '../components/list-section.js';
import { callApi } from '../api.js';
import { usePolledList } from '../changes.js';
import { useTranslate } from '../i18n/context.js';
import type { Session } from '../session.js';
import type { NodeRecord } from '../../../src/records.js';

interface Props {
  session: Session;
  onUnauthenticated: () => void;
}

export function NodesPage({ session, onUnauthenticated }: Props) {
  const t = useTranslate();
  const { polled, changes } = usePolledList<NodeRecord>(session, '/v1/nodes?limit=1000', onUnauthenticated);

  // A platform admin addresses a tenant's node with ?tenant_id= and a shared node without it (docs/api.md);
  // a tenant's token naming its own tenant changes nothing.
  const remove = (node: NodeRecord) => {
    const query = node.tenant_id === null ? '' : `?tenant_id=${encodeURIComponent(node.tenant_id)}`;
    return changes.run(() => callApi(session, 'DELETE', `/v1/nodes/${encodeURIComponent(node.node_id)}${query}`));
  };

  return (
    <>
      <h1>{t('nodes.title')}</h1>
      <ListSection
        id="node-list-title"
        title={t('nodes.list')}
        errors={[polled.error, changes.error]}
        loading={polled.value === undefined}
        empty={polled.value?.length === 0 ? t('nodes.empty') : undefined}
        columns={[t('nodes.id'), t('nodes.pool'), t('vms.state'), t('nodes.capacity'), t('nodes.allocated'), t('nodes.lastHeartbeat'), t('vms.actions')]}
      >
        {(polled.value ?? []).map((node) => {
          const pool = node.shared ? t('nodes.shared') : (node.tenant_id ?? '');
          return (
            <tr key={`${node.tenant_id ?? ''}/${node.node_id}`}>
              <th scope="row">{node.node_id}</th>
              <td>{pool}</td>
              <td>{node.state}</td>
              <td>
                {t('nodes.capacityValue', {
                  cpus: node.capacity.cpus,
                  memory: node.capacity.memory_mb_total,
                  disk: node.capacity.disk_gb_available,
                  kvm: node.capacity.kvm ? 'KVM' : 'TCG',
                })}
              </td>
              <td>
                {t('nodes.allocatedValue', {
                  vms: node.allocated.vms,
                  vcpus: node.allocated.vcpus,
                  memory: node.allocated.memory_mb,
                  disk: node.allocated.disk_gb,
                })}
              </td>
              <td>{new Date(node.last_heartbeat_at).toLocaleString()}</td>
              <td class="actions">
                <button
                  type="button"
                  aria-label={t('nodes.removeNamed', { id: node.node_id, pool })}
                  onClick={() => confirm(t('nodes.removeConfirm', { id: node.node_id, pool })) && void remove(node)}
                >
                  {t('nodes.remove')}
                </button>
              </td>
            </tr>
          );
        })}
      </ListSection>
    </>
  );
}
