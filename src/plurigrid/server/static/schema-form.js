// Form fields generated from the microworld's JSON Schema (GET /api/schema/microworld): one field per
// property, each tagged with the field path the API uses in its errors, so an error lands on its field.

import { h } from './dom.js';
import { pathAndParents } from './spec-path.js';

/** @typedef {Record<string, any>} JsonSchema */
/**
 * @typedef {Object} FormOptions
 * @property {(path: string, value: unknown) => void} onChange a field changed; `undefined`: cleared (default applies)
 * @property {string[]} [skip] properties not shown
 * @property {Record<string, (path: string, value: unknown) => HTMLElement>} [custom] properties with a field of their own
 * @property {(defName: string) => Record<string, unknown>} [starter] the first value of a union member chosen
 */

/**
 * The shape of a property, which decides its field.
 * @typedef {{kind: 'enum', values: unknown[]} | {kind: 'boolean' | 'number' | 'integer' | 'text' | 'numbers' | 'json'}
 *   | {kind: 'object', schema: JsonSchema} | {kind: 'union', schema: JsonSchema}} Shape
 */

export class SchemaForms {
  /** @param {JsonSchema} root the microworld schema with its $defs */
  constructor(root) {
    this.root = root;
  }

  /** @param {string} name */
  definition(name) {
    const def = this.root.$defs?.[name];
    if (!def) throw new Error(`the schema has no definition ${name}`);
    return def;
  }

  /** @param {JsonSchema} schema @returns {JsonSchema} */
  resolve(schema) {
    let s = schema;
    while (s && s.$ref) s = this.definition(String(s.$ref).split('/').pop() ?? '');
    return s;
  }

  /**
   * The object schema of a property that may also be null (`anyOf: [{$ref}, {type: null}]`).
   * @param {JsonSchema} schema
   * @returns {JsonSchema}
   */
  objectSchema(schema) {
    const s = this.resolve(schema);
    const member = s.anyOf?.map((/** @type {JsonSchema} */ m) => this.resolve(m)).find((/** @type {JsonSchema} */ m) => m.properties);
    return member ?? s;
  }

  /**
   * The values a property may take, e.g. enumOf('MarketSection', 'mechanism').
   * @param {string} defName
   * @param {string} property
   * @returns {string[]}
   */
  enumOf(defName, property) {
    const shape = this.shapeOf(this.definition(defName).properties[property]);
    return shape.kind === 'enum' ? shape.values.map(String) : [];
  }

  /**
   * @param {JsonSchema} property
   * @returns {Shape}
   */
  shapeOf(property) {
    const p = this.resolve(property);
    if (p.enum) return { kind: 'enum', values: p.enum };
    if (p.const !== undefined) return { kind: 'enum', values: [p.const] };
    if (p.oneOf && p.discriminator) return { kind: 'union', schema: p };
    if (p.anyOf) {
      const members = p.anyOf.map((/** @type {JsonSchema} */ m) => this.resolve(m)).filter((/** @type {JsonSchema} */ m) => m.type !== 'null');
      if (members.length === 1) return this.shapeOf(members[0]);
      const types = new Set(members.map((/** @type {JsonSchema} */ m) => m.type));
      if (types.size === 2 && types.has('array') && (types.has('number') || types.has('integer'))) return { kind: 'numbers' };
      return { kind: 'json' };
    }
    if (p.type === 'boolean') return { kind: 'boolean' };
    if (p.type === 'number') return { kind: 'number' };
    if (p.type === 'integer') return { kind: 'integer' };
    if (p.type === 'string') return { kind: 'text' };
    if (p.type === 'object' && p.properties) return { kind: 'object', schema: p };
    if (p.type === 'array' && !p.prefixItems && ['number', 'integer'].includes(this.resolve(p.items ?? {}).type)) return { kind: 'numbers' };
    return { kind: 'json' };
  }

  /**
   * Fields for the properties of an object.
   * @param {JsonSchema | string} schemaOrName a schema or the name of a definition
   * @param {Record<string, any> | undefined} value the object as it is now
   * @param {string} path its field path, e.g. "participant[2].assets.battery"
   * @param {FormOptions} options
   * @returns {HTMLElement[]}
   */
  fields(schemaOrName, value, path, options) {
    const schema = typeof schemaOrName === 'string' ? this.definition(schemaOrName) : this.objectSchema(schemaOrName);
    const required = new Set(schema.required ?? []);
    /** @type {HTMLElement[]} */
    const out = [];
    for (const [key, property] of Object.entries(schema.properties ?? {})) {
      if (options.skip?.includes(key)) continue;
      const fieldPath = path ? `${path}.${key}` : key;
      const custom = options.custom?.[key];
      out.push(custom ? custom(fieldPath, value?.[key])
        : this.field(key, property, value?.[key], fieldPath, required.has(key), { onChange: options.onChange, starter: options.starter }));
    }
    return out;
  }

  /**
   * @param {string} key
   * @param {JsonSchema} property
   * @param {unknown} current
   * @param {string} path
   * @param {boolean} required
   * @param {FormOptions} options
   * @returns {HTMLElement}
   */
  field(key, property, current, path, required, options) {
    const p = this.resolve(property);
    const shape = this.shapeOf(property);
    const onChange = options.onChange;
    const placeholder = p.default !== undefined && p.default !== null && typeof p.default !== 'object' ? String(p.default) : (required ? 'required' : '');
    switch (shape.kind) {
      case 'enum': {
        const chosen = current ?? p.default;
        const select = h('select', { onchange: () => onChange(path, select.value === '' ? undefined : select.value) },
          chosen === undefined || chosen === null ? h('option', { value: '' }, '—') : null,
          shape.values.map((v) => h('option', { value: String(v), selected: v === chosen }, String(v))));
        return labelled(key, path, p.description, select);
      }
      case 'boolean': {
        const box = h('input', { type: 'checkbox', checked: Boolean(current ?? p.default), onchange: () => onChange(path, box.checked) });
        return labelled(key, path, p.description, box, 'field-check');
      }
      case 'number':
      case 'integer': {
        const input = h('input', {
          type: 'number', step: shape.kind === 'integer' ? '1' : 'any', value: current ?? '', placeholder,
          oninput: () => onChange(path, input.value === '' ? undefined : Number(input.value)),
        });
        return labelled(key, path, p.description, input);
      }
      case 'text': {
        // Ids take effect when the field is left: renaming a bus renames every reference to it.
        const event = key === 'id' ? 'onchange' : 'oninput';
        const input = h('input', {
          type: 'text', value: current ?? '', placeholder,
          [event]: () => onChange(path, input.value === '' && !required ? undefined : input.value),
        });
        return labelled(key, path, p.description, input);
      }
      case 'numbers': {
        const input = h('input', {
          type: 'text', value: Array.isArray(current) ? current.join(', ') : (current ?? ''), placeholder,
          title: 'a number, or values separated by commas',
          oninput: () => {
            const parsed = parseNumbers(input.value);
            setLocalError(input, parsed === null ? 'expected a number or numbers separated by commas' : '');
            if (parsed !== null) onChange(path, parsed);
          },
        });
        return labelled(key, path, p.description, input);
      }
      case 'object': {
        const box = h('fieldset', { class: 'subform', 'data-path': path },
          h('legend', {}, key), h('div', { class: 'field-error', 'data-testid': 'field-error' }));
        box.append(...this.fields(shape.schema, /** @type {Record<string, any> | undefined} */ (current), path, options));
        return box;
      }
      case 'union':
        return this.unionFields(key, shape.schema, /** @type {Record<string, any> | undefined} */ (current), path, options);
      default: {
        const area = h('textarea', {
          rows: 2, value: current === undefined ? '' : JSON.stringify(current), placeholder: 'JSON',
          onchange: () => {
            try {
              onChange(path, area.value.trim() === '' ? undefined : JSON.parse(area.value));
              setLocalError(area, '');
            } catch {
              setLocalError(area, 'expected JSON');
            }
          },
        });
        return labelled(key, path, p.description, area);
      }
    }
  }

  /**
   * A tagged union (a profile): a select of its members by tag, then the chosen member's fields.
   * @param {string} key
   * @param {JsonSchema} schema
   * @param {Record<string, any> | undefined} current
   * @param {string} path
   * @param {FormOptions} options
   */
  unionFields(key, schema, current, path, options) {
    const tag = schema.discriminator.propertyName;
    /** @type {Record<string, string>} */
    const mapping = schema.discriminator.mapping;
    const defName = (/** @type {string} */ member) => mapping[member].split('/').pop() ?? '';
    const box = h('fieldset', { class: 'subform', 'data-path': path });
    const render = (/** @type {Record<string, any> | undefined} */ value) => {
      const chosen = value?.[tag] ?? schema.default?.[tag] ?? Object.keys(mapping)[0];
      // written by generated participants only: offered when it is already there
      const members = Object.keys(mapping).filter((m) => m !== 'simbench' || m === chosen);
      const select = h('select', {
        onchange: () => {
          const next = { [tag]: select.value, ...(options.starter?.(defName(select.value)) ?? {}) };
          options.onChange(path, next);
          render(next);
        },
      }, members.map((m) => h('option', { value: m, selected: m === chosen }, m)));
      let written = value !== undefined;
      const memberOptions = {
        ...options,
        skip: [tag],
        onChange: (/** @type {string} */ p, /** @type {unknown} */ v) => {
          if (!written) {
            options.onChange(path, { [tag]: chosen });
            written = true;
          }
          options.onChange(p, v);
        },
      };
      box.replaceChildren(
        h('legend', {}, key),
        h('div', { class: 'field-error', 'data-testid': 'field-error' }),
        labelled(tag, `${path}.${tag}`, 'which kind of profile', select),
        ...this.fields(defName(chosen), value, path, memberOptions));
    };
    render(current);
    return box;
  }
}

/**
 * @param {string} key
 * @param {string} path
 * @param {string | undefined} description
 * @param {HTMLElement} control
 * @param {string} [extraClass]
 */
function labelled(key, path, description, control, extraClass = '') {
  return h('label', { class: `field ${extraClass}`.trim(), 'data-path': path },
    h('span', { class: 'field-label', title: description ?? '' }, key),
    control,
    h('span', { class: 'field-error', 'data-testid': 'field-error' }));
}

/**
 * "0.3" → 0.3; "0.2, 0.2, 0.3" → [0.2, 0.2, 0.3]; null if any part is not a number.
 * @param {string} text
 * @returns {number | number[] | undefined | null}
 */
function parseNumbers(text) {
  const parts = text.split(/[\s,;]+/).filter(Boolean);
  if (parts.length === 0) return undefined;
  const numbers = parts.map(Number);
  if (numbers.some((n) => !Number.isFinite(n))) return null;
  return numbers.length === 1 ? numbers[0] : numbers;
}

/**
 * A field's own complaint about what was typed (before the API sees it).
 * @param {HTMLElement} control
 * @param {string} message
 */
function setLocalError(control, message) {
  const field = control.closest('.field');
  const slot = field?.querySelector('.field-error');
  field?.classList.toggle('invalid', Boolean(message));
  if (slot) slot.textContent = message;
}

/** Clears every error shown in a container. @param {HTMLElement} container */
export function clearFieldErrors(container) {
  for (const el of container.querySelectorAll('.invalid')) el.classList.remove('invalid');
  for (const slot of container.querySelectorAll('.field-error')) slot.textContent = '';
}

/**
 * Shows an error on the field its path names, or on the nearest section containing it.
 * @param {HTMLElement} container
 * @param {string} path
 * @param {string} message
 * @returns {HTMLElement | null} the field or section that shows it, null if none is in the container
 */
export function showFieldError(container, path, message) {
  for (const candidate of pathAndParents(path)) {
    const target = /** @type {HTMLElement | null} */ (container.querySelector(`[data-path="${CSS.escape(candidate)}"]`));
    if (!target) continue;
    const holder = target.classList.contains('field') || target.classList.contains('subform') ? target : target.closest('.field, .subform');
    if (!holder) continue;
    holder.classList.add('invalid');
    const slot = holder.querySelector(':scope > .field-error');
    if (slot) slot.textContent = message;
    return /** @type {HTMLElement} */ (holder);
  }
  return null;
}
