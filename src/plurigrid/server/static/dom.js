// Building DOM nodes without a framework: h('div', {class: 'x', 'data-testid': 'y', onclick}, child, ...).

/** @typedef {Node | string | number | null | undefined | false} Child */
/** @typedef {Child | Child[] | (Child | Child[])[]} Children */

/**
 * Creates an element. Attributes whose name starts with "on" and whose value is a function become event
 * listeners; names the element has as a property (value, checked, disabled, type...) are set as properties;
 * everything else (data-*, aria-*, class...) as attributes. null, undefined and false leave a key out.
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {Record<string, unknown>} [attrs]
 * @param {...Children} children
 * @returns {HTMLElementTagNameMap[K]}
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') {
      el.addEventListener(key.slice(2), /** @type {EventListener} */ (value));
    } else if (key === 'class') {
      el.className = String(value);
    } else if (!key.includes('-') && key in el) {
      /** @type {Record<string, unknown>} */ (/** @type {unknown} */ (el))[key] = value;
    } else {
      el.setAttribute(key, value === true ? '' : String(value));
    }
  }
  append(el, children);
  return el;
}

/**
 * @param {Element} parent
 * @param {Children[]} children
 */
function append(parent, children) {
  for (const child of /** @type {Child[]} */ (children.flat(Infinity))) {
    if (child === null || child === undefined || child === false) continue;
    parent.append(child instanceof Node ? child : String(child));
  }
}

/**
 * Replaces an element's children.
 * @param {Element} parent
 * @param {...Children} children
 */
export function replaceChildren(parent, ...children) {
  parent.replaceChildren();
  append(parent, children);
}

/**
 * A number for people: fixed decimals, or '–' when there is none.
 * @param {number | null | undefined} value
 * @param {number} [decimals]
 */
export function formatNumber(value, decimals = 2) {
  if (value === null || value === undefined || !Number.isFinite(value)) return '–';
  return value.toLocaleString('en-US', { minimumFractionDigits: decimals, maximumFractionDigits: decimals, useGrouping: false });
}

/**
 * A moment the API gives in seconds since 1970, as local date and time ("2024-06-21 13:05").
 * @param {number | null | undefined} epochSeconds
 */
export function formatTime(epochSeconds) {
  if (epochSeconds === null || epochSeconds === undefined || !Number.isFinite(epochSeconds)) return '';
  const t = new Date(epochSeconds * 1000);
  const two = (/** @type {number} */ n) => String(n).padStart(2, '0');
  return `${t.getFullYear()}-${two(t.getMonth() + 1)}-${two(t.getDate())} ${two(t.getHours())}:${two(t.getMinutes())}`;
}
