/**
 * Schema validation failures in plain words. Ajv's own messages speak of its schema ("must be equal
 * to constant", "must NOT have fewer than 1 properties", a raw regular expression); a caller needs
 * to know which values, fields or form are accepted. The validators run with `verbose`, so each
 * error carries the schema it failed and the data it judged, from which the words are made.
 */
import type { ErrorObject } from 'ajv';

export interface ValidationProblem {
  /** The failing field, dotted (`quota.limit`), or the part of the request (`body`). */
  field: string;
  detail: string;
}

type Part = 'body' | 'querystring' | 'params' | 'headers';

const PART_NAMES: Record<Part, string> = { body: 'the body', querystring: 'the query', params: 'the path', headers: 'the headers' };

const TYPE_NAMES: Record<string, string> = {
  integer: 'an integer',
  number: 'a number',
  string: 'a string',
  boolean: 'true or false',
  null: 'null',
  array: 'an array',
  object: 'a JSON object',
};

/** At most this many unknown names are echoed back: they are the client's own text. */
const MAX_NAMED_UNKNOWN = 10;

const dotted = (instancePath: string) => instancePath.replace(/^\//, '').replace(/\//g, '.');
const quoted = (names: string[]) => names.map((n) => `"${n}"`).join(', ');
const propertiesOf = (schema: unknown) => Object.keys((schema as { properties?: object } | undefined)?.properties ?? {});

export function describeValidation(errors: ErrorObject[], part: string): ValidationProblem {
  const first = errors[0]!;
  const where = (part in PART_NAMES ? part : 'body') as Part;
  const path = dotted(first.instancePath);

  if (first.keyword === 'additionalProperties') {
    const known = propertiesOf(first.parentSchema);
    const data = first.data !== null && typeof first.data === 'object' ? first.data : {};
    const unknown = Object.keys(data).filter((name) => !known.includes(name));
    const field = [path, unknown[0]].filter(Boolean).join('.');
    const what = where === 'querystring' ? 'query parameter' : 'field';
    const named = quoted(unknown.slice(0, MAX_NAMED_UNKNOWN)) + (unknown.length > MAX_NAMED_UNKNOWN ? ', …' : '');
    const takes = known.length > 0 ? `${path ? `"${path}"` : PART_NAMES[where]} takes ${quoted(known)}` : `${PART_NAMES[where]} takes none`;
    return { field, detail: `unknown ${what}${unknown.length > 1 ? 's' : ''} ${named}: ${takes}` };
  }
  if (first.keyword === 'required') {
    const field = [path, (first.params as { missingProperty: string }).missingProperty].filter(Boolean).join('.');
    return { field, detail: `field "${field}" is required` };
  }
  // A union (anyOf) fails with an error per branch. A branch whose type fit the value failed inside
  // it, and says what is wrong; if none fit, the answer lists what each branch would take.
  const union = errors.some((e) => e.keyword === 'anyOf' && e.instancePath === first.instancePath);
  const within = (e: ErrorObject) => e.instancePath === first.instancePath || e.instancePath.startsWith(`${first.instancePath}/`);
  const fitted = union ? errors.filter((e) => within(e) && e.keyword !== 'anyOf' && !missedType(e)) : [];
  const focus = fitted[0] ?? first;
  const focusPath = dotted(focus.instancePath);
  const siblings = errors.filter((e) => e.instancePath === focus.instancePath && e.keyword !== 'anyOf' && (fitted.length === 0 || !missedType(e)));
  const field = focusPath || where;
  const subject = focusPath ? `field "${focusPath}"` : PART_NAMES[where];
  return { field, detail: `${subject} ${requirement(focus, union ? siblings : [focus])}` };
}

/** What the value must be, in words; `branches` are the errors of a union's branches at its place. */
function requirement(first: ErrorObject, branches: ErrorObject[]): string {
  const params = first.params as Record<string, unknown>;
  const parent = first.parentSchema as { pattern?: string; description?: string; properties?: object } | undefined;
  switch (first.keyword) {
    case 'const':
    case 'enum':
    case 'type': {
      const values = [...new Set(branches.flatMap(valuesOf))];
      const alternatives = [...values, ...new Set(branches.flatMap(typesOf))];
      if (alternatives.length === 1) return `must be ${alternatives[0]}`;
      return `must be ${values.length > 2 ? 'one of ' : ''}${alternatives.slice(0, -1).join(', ')} or ${alternatives.at(-1)}`;
    }
    case 'pattern':
    case 'minLength':
    case 'maxLength':
      // Formats are described in words on their schema (src/api/schemas.ts), never as the regex.
      if (parent?.pattern !== undefined && parent.description !== undefined) return `must be ${parent.description}`;
      if (first.keyword === 'minLength') return `must be at least ${String(params.limit)} characters long`;
      if (first.keyword === 'maxLength') return `must be at most ${String(params.limit)} characters long`;
      return 'is not in the accepted form';
    case 'minimum':
      return `must be at least ${String(params.limit)}`;
    case 'maximum':
      return `must be at most ${String(params.limit)}`;
    case 'minItems':
      return `must list at least ${String(params.limit)}`;
    case 'maxItems':
      return `must list at most ${String(params.limit)}`;
    case 'uniqueItems':
      return `must not list the same value twice (items ${String(params.j)} and ${String(params.i)})`;
    case 'minProperties':
      return `must set at least one of ${quoted(propertiesOf(parent))}`;
    default:
      return first.message ?? 'is invalid';
  }
}

const jsonType = (value: unknown) => (value === null ? 'null' : Array.isArray(value) ? 'array' : typeof value);

/** Whether a union branch failed because the value is of another type altogether. */
function missedType(error: ErrorObject): boolean {
  if (error.keyword === 'type') return true;
  return error.keyword === 'const' && jsonType(error.data) !== jsonType((error.params as { allowedValue?: unknown }).allowedValue);
}

/** The literal values a failed branch would take (a TypeBox literal fails on its type or its const). */
function valuesOf(error: ErrorObject): string[] {
  const params = error.params as { allowedValue?: unknown; allowedValues?: unknown[] };
  const literal = (error.parentSchema as { const?: unknown } | undefined)?.const;
  if (error.keyword === 'const') return [JSON.stringify(params.allowedValue)];
  if (error.keyword === 'enum') return (params.allowedValues ?? []).map((v) => JSON.stringify(v));
  if (error.keyword === 'type' && literal !== undefined) return [JSON.stringify(literal)];
  return [];
}

/** The types a failed branch would take, in words. */
function typesOf(error: ErrorObject): string[] {
  if (error.keyword !== 'type' || (error.parentSchema as { const?: unknown } | undefined)?.const !== undefined) return [];
  return String((error.params as { type: string }).type)
    .split(',')
    .map((t) => TYPE_NAMES[t] ?? t);
}
