// The API key lives in sessionStorage only: it is gone when the tab closes, and never written
// to disk by the console. Views subscribe to sign-in / sign-out.
const KEY = "tunehouse.apiKey";
const listeners = new Set();
let notice = null;

export function apiKey() {
  return sessionStorage.getItem(KEY);
}

export function signIn(key) {
  sessionStorage.setItem(KEY, key);
  notice = null;
  for (const fn of listeners) fn();
}

/** Forget the key; `message` is shown on the sign-in form (e.g. why the key was refused). */
export function signOut(message = null) {
  sessionStorage.removeItem(KEY);
  notice = message;
  for (const fn of listeners) fn();
}

export function signInNotice() {
  return notice;
}

export function onSessionChange(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}
