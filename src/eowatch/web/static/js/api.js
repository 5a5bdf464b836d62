// The one way the pages talk to the eowatch API: every call carries the API key the
// user entered (kept in sessionStorage: gone when the tab closes), and every failure
// becomes an ApiError whose message is the service's own description.

const KEY_STORAGE = "eowatch.apiKey";

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export function storedKey() {
  return sessionStorage.getItem(KEY_STORAGE);
}

export function storeKey(key) {
  if (key) sessionStorage.setItem(KEY_STORAGE, key);
  else sessionStorage.removeItem(KEY_STORAGE);
}

function authHeaders(extra = {}) {
  const key = storedKey();
  return key ? { ...extra, Authorization: `Bearer ${key}` } : extra;
}

async function failure(response) {
  let description = `${response.status} ${response.statusText}`;
  try {
    const body = await response.json();
    description = body.description || body.detail || description;
  } catch {
    // not JSON: keep the status line
  }
  if (response.status === 401) description = `not signed in or the key is not valid: ${description}`;
  return new ApiError(response.status, description);
}

/** fetch with the key; resolves to the Response, rejects with ApiError on a non-2xx status. */
export async function request(url, { method = "GET", body, headers = {}, signal } = {}) {
  const init = { method, headers: authHeaders(headers), signal };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers["Content-Type"] = "application/json";
  }
  let response;
  try {
    response = await fetch(url, init);
  } catch (err) {
    if (err.name === "AbortError") throw err;
    throw new ApiError(0, `the eowatch service cannot be reached (${err.message}); is it running?`);
  }
  if (!response.ok) throw await failure(response);
  return response;
}

export async function getJSON(url, options) {
  const response = await request(url, options);
  return response.status === 204 ? null : response.json();
}

export function postJSON(url, body) {
  return getJSON(url, { method: "POST", body });
}

/** An object URL of an authenticated resource (images, downloads); revoke it when done. */
export async function objectURL(url, options) {
  const response = await request(url, options);
  return URL.createObjectURL(await response.blob());
}

/** Save an authenticated asset under `filename` (an <a download> on an object URL). */
export async function download(url, filename) {
  const href = await objectURL(url);
  const link = document.createElement("a");
  link.href = href;
  link.download = filename;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(href), 60_000);
}

export async function whoami() {
  return getJSON("/whoami");
}

export async function loadConfig() {
  const response = await fetch("config.json");
  return response.json();
}

/** Every feature of a STAC item search, following `next` links (GET /search). */
export async function searchAll(params, { max = 1000 } = {}) {
  const query = new URLSearchParams({ limit: "100", ...params });
  let url = `/search?${query}`;
  const features = [];
  while (url && features.length < max) {
    const page = await getJSON(url);
    features.push(...(page.features || []));
    const next = (page.links || []).find((link) => link.rel === "next");
    url = next && next.method !== "POST" ? next.href : null;
  }
  return features;
}

export function escapeHTML(value) {
  return String(value ?? "").replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

export function formatDate(value) {
  if (!value) return "–";
  return String(value).slice(0, 10);
}

export function formatArea(m2) {
  if (m2 === undefined || m2 === null) return "–";
  return m2 >= 1e6 ? `${(m2 / 1e6).toFixed(2)} km²` : `${Math.round(m2).toLocaleString("en")} m²`;
}
