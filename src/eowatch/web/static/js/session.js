// Sign-in shared by both pages: the key is checked with GET /whoami before it is kept.

import { ApiError, escapeHTML, storeKey, storedKey, whoami } from "./api.js";

/** Wire the sign-in form; `onSignedIn(who)` runs once a key is accepted (also for a key
 * kept from earlier in this tab), `onSignedOut()` after signing out. */
export function setupSession({ onSignedIn, onSignedOut }) {
  const form = document.getElementById("sign-in-form");
  const input = document.getElementById("key-input");
  const error = document.getElementById("auth-error");
  const badge = document.getElementById("whoami");
  const signOut = document.getElementById("sign-out");

  const showSignedIn = (who) => {
    document.body.classList.add("signed-in");
    document.body.dataset.role = who.role; // partners read only: no task actions (CSS)
    form.hidden = true;
    badge.hidden = false;
    signOut.hidden = false;
    badge.innerHTML = `<span class="who-name">${escapeHTML(who.name)}</span>
      <span class="who-role role-${escapeHTML(who.role)}">${escapeHTML(who.role)}</span>
      ${who.organisation ? `<span class="who-org">${escapeHTML(who.organisation)}</span>` : ""}`;
    error.textContent = "";
    onSignedIn(who);
  };
  const showSignedOut = () => {
    document.body.classList.remove("signed-in");
    delete document.body.dataset.role;
    form.hidden = false;
    badge.hidden = true;
    signOut.hidden = true;
    onSignedOut();
  };
  const tryKey = async (key) => {
    storeKey(key);
    try {
      showSignedIn(await whoami());
    } catch (err) {
      storeKey(null);
      error.textContent =
        err instanceof ApiError && err.status === 401
          ? "This API key was not accepted. Check it (keys start with eow_) or ask an administrator for a new one."
          : `Cannot sign in: ${err.message}`;
      showSignedOut();
    }
  };

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const key = input.value.trim();
    if (!key) {
      error.textContent = "Enter your API key.";
      return;
    }
    input.value = "";
    tryKey(key);
  });
  signOut.addEventListener("click", () => {
    storeKey(null);
    showSignedOut();
  });
  const kept = storedKey();
  if (kept) tryKey(kept);
  else showSignedOut();
  return {
    /** Sign out when the API refuses the key (revoked or expired while the page was open). */
    check(err) {
      if (!(err instanceof ApiError && err.status === 401) || !storedKey()) return false;
      storeKey(null);
      error.textContent = "Your API key is no longer accepted (revoked or expired); sign in again.";
      showSignedOut();
      return true;
    },
  };
}

/** A status line for messages (`kind`: info or error); info fades after a while. */
export function messenger(element) {
  let timer = null;
  return (text, kind = "info") => {
    element.textContent = text;
    element.className = `message ${kind}`;
    element.hidden = false;
    clearTimeout(timer);
    if (kind === "info") timer = setTimeout(() => (element.hidden = true), 6000);
  };
}
