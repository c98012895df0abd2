/** The nodes page: each fleet node's state, capacity and what is allocated on it (a platform admin sees every pool's). */
import { ListSection } from '../components/list-section.js';
import { callApi } from '../api.js';
import { useTranslate } from '../i18n/context.js';
import { usePolling } from '../poll.js';
import type { Session } from '../session.js';
import type { NodeRecord } from '../../../src/records.js';

interface Props {
  session: Session;
  onUnauthenticated: () => void;
}

export function NodesPage({ session, onUnauthenticated }: Props) {
  const t = useTranslate();
  const polled = usePolling(async () => (await callApi<{ items: NodeRecord[] }>(session, 'GET', '/v1/nodes?limit=1000')).body.items, onUnauthenticated);
  return (
    <>
      <h1>{t('nodes.title')}</h1>
      <ListSection
        id="node-list-title"
        title={t('nodes.list')}
        errors={[polled.error]}
        loading={polled.value === undefined}
        empty={polled.value?.length === 0 ? t('nodes.empty') : undefined}
        columns={[t('nodes.id'), t('nodes.pool'), t('vms.state'), t('nodes.capacity'), t('nodes.allocated'), t('nodes.lastHeartbeat')]}
      >
        {(polled.value ?? []).map((node) => (
          <tr key={`${node.tenant_id ?? ''}/${node.node_id}`}>
            <th scope="row">{node.node_id}</th>
            <td>{node.shared ? t('nodes.shared') : (node.tenant_id ?? '')}</td>
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
          </tr>
        ))}
      </ListSection>
    </>
  );
}
