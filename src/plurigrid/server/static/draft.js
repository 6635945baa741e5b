// The designer's work in progress, kept in sessionStorage: leaving the designer for the runs or the worlds
// and coming back (#/designer) finds the world as it was left, saved or not.

const DRAFT_KEY = 'plurigrid.designer-draft';

/**
 * @typedef {Object} Draft
 * @property {import('./api.js').Spec} spec
 * @property {string | null} worldId the saved world it edits
 * @property {string | null} libraryName the library world it is, unchanged
 * @property {boolean} dirty changed since it was saved
 * @property {[string, [number, number]][]} layout where buses without diagram_xy are drawn
 */

/** @param {Draft} draft */
export function keepDraft(draft) {
  try {
    sessionStorage.setItem(DRAFT_KEY, JSON.stringify(draft));
  } catch {
    // a spec too large for sessionStorage is simply not kept
  }
}

/** @returns {Draft | null} */
export function keptDraft() {
  const text = sessionStorage.getItem(DRAFT_KEY);
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

export function dropDraft() {
  sessionStorage.removeItem(DRAFT_KEY);
}
