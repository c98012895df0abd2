/** A problem from the API, worded for people: a quota refusal with its limit and usage, a rate limit with when to retry. */
import { ApiError } from '../api.js';
import { useTranslate, type Translate } from '../i18n/context.js';

export function ErrorNotice({ error }: { error: unknown }) {
  const t = useTranslate();
  return (
    <p role="alert" class="error">
      {describeError(t, error)}
    </p>
  );
}

interface QuotaFacts {
  resource: string;
  limit: number;
  used: number;
  requested: number;
}

export function describeError(t: Translate, error: unknown): string {
  if (!(error instanceof ApiError)) return t('error.network');
  const { problem } = error;
  if (problem.code === 'rate_limited') return t('error.rate_limited', { seconds: error.retryAfter ?? 60 });
  if (problem.code === 'quota_exceeded' && typeof problem.quota === 'object' && problem.quota !== null) {
    const quota = problem.quota as QuotaFacts;
    return t('error.quota_exceeded', { resource: quota.resource, limit: quota.limit, used: quota.used, requested: quota.requested });
  }
  return t('error.generic', { status: problem.status, detail: error.message });
}
