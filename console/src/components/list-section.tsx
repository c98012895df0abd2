/**
 * A card holding one of the console's lists: its heading, what went wrong reading or changing it,
 * "loading" until the first answer, an empty message, and otherwise a table whose box scrolls
 * sideways on a narrow screen (focusable and named by the heading, so keyboards can scroll it).
 */
import type { ComponentChildren } from 'preact';
import { useTranslate } from '../i18n/context.js';
import { ErrorNotice } from './error-notice.js';

interface Props {
  /** The heading's id, which names the section and its scrolling box. */
  id: string;
  title: string;
  /** Errors to show above the table (undefined ones are skipped). */
  errors: readonly unknown[];
  loading: boolean;
  /** Shown instead of the table when there are no rows; undefined shows the table anyway. */
  empty?: string | undefined;
  /** Above the table, below the heading: a status line, a checkpoint note. */
  before?: ComponentChildren;
  columns: readonly string[];
  children: ComponentChildren;
}

export function ListSection({ id, title, errors, loading, empty, before, columns, children }: Props) {
  const t = useTranslate();
  return (
    <section class="card" aria-labelledby={id}>
      <h2 id={id}>{title}</h2>
      {before}
      {errors.map((error, i) => error !== undefined && <ErrorNotice key={i} error={error} />)}
      {loading ? (
        <p aria-busy="true">{t('common.loading')}</p>
      ) : empty !== undefined ? (
        <p>{empty}</p>
      ) : (
        <div class="table-scroll" tabIndex={0} role="region" aria-labelledby={id}>
          <table>
            <thead>
              <tr>
                {columns.map((column) => (
                  <th key={column} scope="col">
                    {column}
                  </th>
                ))}
              </tr>
            </thead>
            <tbody>{children}</tbody>
          </table>
        </div>
      )}
    </section>
  );
}
