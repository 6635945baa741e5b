// Field paths as the API names them in its errors ("participant[2].assets.battery.capacity_kwh"): reading and
// writing a spec at such a path, and the paths that contain one.

/**
 * The keys of a path: "participant[2].assets.battery" → ["participant", 2, "assets", "battery"].
 * @param {string} path
 * @returns {(string | number)[]}
 */
function parsePath(path) {
  /** @type {(string | number)[]} */
  const keys = [];
  for (const match of path.matchAll(/([^.[\]]+)|\[(\d+)\]/g)) {
    keys.push(match[2] !== undefined ? Number(match[2]) : match[1]);
  }
  return keys;
}

/**
 * @param {unknown} root
 * @param {string} path
 * @returns {any}
 */
export function getAtPath(root, path) {
  /** @type {any} */
  let node = root;
  for (const key of parsePath(path)) {
    if (node === null || typeof node !== 'object') return undefined;
    node = node[key];
  }
  return node;
}

/**
 * Sets a value, creating the objects on the way; `undefined` deletes the key (the spec's default applies).
 * @param {Record<string, any>} root
 * @param {string} path
 * @param {unknown} value
 */
export function setAtPath(root, path, value) {
  const keys = parsePath(path);
  /** @type {any} */
  let node = root;
  for (const key of keys.slice(0, -1)) {
    if (node[key] === null || typeof node[key] !== 'object') node[key] = {};
    node = node[key];
  }
  const last = keys[keys.length - 1];
  if (value === undefined) {
    delete node[last];
  } else {
    node[last] = value;
  }
}

/**
 * The path and those containing it, longest first: "a[1].b" → ["a[1].b", "a[1]", "a"].
 * @param {string} path
 * @returns {string[]}
 */
export function pathAndParents(path) {
  const out = [];
  let rest = path;
  while (rest) {
    out.push(rest);
    rest = rest.replace(/(\.[^.[\]]+|\[\d+\])$/, '');
    if (rest === out[out.length - 1]) break;
  }
  return out;
}
