/**
 * The signature base (RFC 9421 §2.5): one line per covered component, `"name": value`, then the
 * `@signature-params` line. Signer and verifier build it here from the same request parts, so they
 * cannot drift apart. The derived components are those a server can know from the request it
 * received: `@method`, `@path`, `@query` and `@authority`; any field may be covered whole.
 */
import { fieldLines, fieldValue, malformed, type HeaderFields } from './fields.js';

export interface RequestParts {
  /** As received; RFC 9421 §2.2.1 does not normalise its case. */
  method: string;
  /** The request target's path, without the query. */
  path: string;
  /** What follows the `?` of the request target, without it; empty or absent when there is none. */
  query?: string | undefined;
  headers: HeaderFields;
  body?: Uint8Array | undefined;
}

/** Splits a request target (`/v1/vms?limit=2`) into the path and query RFC 9421 signs. */
export function splitTarget(target: string): { path: string; query: string } {
  const mark = target.indexOf('?');
  return mark === -1 ? { path: target, query: '' } : { path: target.slice(0, mark), query: target.slice(mark + 1) };
}

export function signatureBase(request: RequestParts, components: readonly string[], signatureParams: string): string {
  const lines = components.map((name) => `"${name}": ${componentValue(request, name)}`);
  lines.push(`"@signature-params": ${signatureParams}`);
  return lines.join('\n');
}

function componentValue(request: RequestParts, name: string): string {
  let value: string | undefined;
  switch (name) {
    case '@method':
      value = request.method;
      break;
    case '@path':
      value = request.path === '' ? '/' : request.path;
      break;
    case '@query':
      value = `?${request.query ?? ''}`;
      break;
    case '@authority':
      value = fieldValue(request.headers, 'host')?.trim().toLowerCase();
      if (value === undefined) throw malformed('the signature covers @authority but the request has no Host');
      break;
    default: {
      if (name.startsWith('@')) throw malformed(`unknown or unsupported derived component "${name}"`);
      const lines = fieldLines(request.headers, name);
      if (lines === undefined) throw malformed(`the signature covers field "${name}", which the request does not carry`);
      // RFC 9421 §2.1: each line trimmed, obsolete folding made a space, lines joined with ", ".
      value = lines.map((line) => line.trim().replace(/\r?\n[ \t]*/g, ' ')).join(', ');
    }
  }
  // A line break inside a value would let a sender forge further lines of the base.
  if (/[\r\n]/.test(value)) throw malformed(`component "${name}" has a line break in its value`);
  return value;
}
