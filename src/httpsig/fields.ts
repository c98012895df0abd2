/**
 * Reading the `Signature-Input` and `Signature` fields (RFC 9421 §4) with a structured-field parser
 * (RFC 9651, the `structured-headers` package), never by hand. Both fields are attacker-controlled,
 * so they are bounded before parsing, and exactly one signature label is considered: a request with
 * several signatures would make the server verify each, for no gain in this product.
 */
import { isInnerList, parseDictionary, serializeInnerList, type Dictionary } from 'structured-headers';
import { SignatureError } from './error.js';

/** Bound on each of Signature and Signature-Input; one Ed25519 signature needs a few hundred bytes. */
export const MAX_SIGNATURE_FIELD_BYTES = 2048;
const MAX_COMPONENTS = 16;
const ED25519_SIGNATURE_BYTES = 64;
/** The derived components a server can know from the request it received (RFC 9421 §2.2). */
const DERIVED_COMPONENTS = new Set(['@method', '@path', '@query', '@authority']);
const FIELD_NAME = /^[a-z0-9!#$%&'*+.^_`|~-]+$/;

/** Request header fields keyed by lower-case name, as Node's `IncomingHttpHeaders` has them. */
export type HeaderFields = Readonly<Record<string, string | string[] | undefined>>;

export interface SignatureFields {
  label: string;
  /** Covered component identifiers in order, e.g. `@method`, `content-digest`. */
  components: string[];
  params: ReadonlyMap<string, unknown>;
  /** The `@signature-params` value: the signature's inner list, serialized (RFC 9421 §2.3). */
  signatureParams: string;
  signature: Buffer;
}

/** One field's value; several lines of the same field are combined with ", " (RFC 9110 §5.3). */
export function fieldValue(headers: HeaderFields, name: string): string | undefined {
  return fieldLines(headers, name)?.join(', ');
}

/**
 * A field's lines, or undefined when absent. Only own properties count: a sender who covers
 * `constructor` or `__proto__` must not reach the object's prototype.
 */
export function fieldLines(headers: HeaderFields, name: string): string[] | undefined {
  if (!Object.hasOwn(headers, name)) return undefined;
  const value = headers[name];
  if (typeof value === 'string') return [value];
  return Array.isArray(value) && value.every((line) => typeof line === 'string') ? value : undefined;
}

export function parseSignatureFields(headers: HeaderFields): SignatureFields {
  const inputText = fieldValue(headers, 'signature-input');
  const signatureText = fieldValue(headers, 'signature');
  if (inputText === undefined || signatureText === undefined) {
    throw new SignatureError('signature_missing', 'the request needs Signature-Input and Signature fields (RFC 9421) by the holder key');
  }
  const inputs = parseBoundedDictionary(inputText, 'Signature-Input');
  const signatures = parseBoundedDictionary(signatureText, 'Signature');
  if (inputs.size !== 1 || signatures.size !== 1) {
    throw malformed(`exactly one signature label is accepted; Signature-Input has ${inputs.size} and Signature ${signatures.size}`);
  }
  const [label, input] = [...inputs][0]!;
  const signature = signatures.get(label);
  if (signature === undefined) throw malformed(`Signature has no member labelled "${label}", the label in Signature-Input`);
  if (!isInnerList(input)) throw malformed(`Signature-Input "${label}" is not an inner list of components`);
  if (isInnerList(signature) || !(signature[0] instanceof ArrayBuffer)) throw malformed(`Signature "${label}" is not a byte sequence`);
  const bytes = Buffer.from(signature[0]);
  if (bytes.length !== ED25519_SIGNATURE_BYTES) throw malformed(`Signature "${label}" is ${bytes.length} bytes; an Ed25519 signature is 64`);

  const [items, params] = input;
  if (items.length > MAX_COMPONENTS) throw malformed(`the signature covers more than ${MAX_COMPONENTS} components`);
  const components: string[] = [];
  for (const [name, componentParams] of items) {
    if (typeof name !== 'string') throw malformed('a covered component is not a string');
    // ;sf, ;key, ;bs, ;req, ;name and ;tr select parts of a field; this product covers whole fields only.
    if (componentParams.size > 0) throw malformed(`component "${name}" has parameters, which are not supported`);
    if (name.startsWith('@') ? !DERIVED_COMPONENTS.has(name) : !FIELD_NAME.test(name)) {
      throw malformed(`component "${name}" is neither a supported derived component nor a lower-case field name`);
    }
    if (components.includes(name)) throw malformed(`component "${name}" is covered twice (RFC 9421 §2.5)`);
    components.push(name);
  }
  return { label, components, params, signatureParams: serializeInnerList(input), signature: bytes };
}

function parseBoundedDictionary(text: string, field: string): Dictionary {
  if (Buffer.byteLength(text) > MAX_SIGNATURE_FIELD_BYTES) throw malformed(`${field} exceeds ${MAX_SIGNATURE_FIELD_BYTES} bytes`);
  try {
    return parseDictionary(text);
  } catch (error) {
    throw malformed(`${field} is not a structured-field dictionary: ${(error as Error).message}`);
  }
}

export function malformed(message: string): SignatureError {
  return new SignatureError('signature_malformed', message);
}
