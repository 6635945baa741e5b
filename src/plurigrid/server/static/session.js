// The signed-in user's token, kept in localStorage between visits.

const TOKEN_KEY = 'plurigrid.token';

/** @returns {string | null} */
export function storedToken() {
  return localStorage.getItem(TOKEN_KEY);
}

/** @param {string} token */
export function storeToken(token) {
  localStorage.setItem(TOKEN_KEY, token);
}

export function forgetToken() {
  localStorage.removeItem(TOKEN_KEY);
}
