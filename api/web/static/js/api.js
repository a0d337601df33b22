// The one way the pages talk to the service: /v1 routes with the key in the X-API-Key header.
// The key lives in sessionStorage only (gone when the tab closes); never in a URL, never logged.

const KEY_SLOT = "locard.key";
const KEY_HEADER = "X-API-Key";

export const key = {
  get: () => sessionStorage.getItem(KEY_SLOT),
  set: (k) => sessionStorage.setItem(KEY_SLOT, k),
  clear: () => sessionStorage.removeItem(KEY_SLOT),
};

class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

async function problemOf(res) {
  try { return await res.json(); } catch { return { detail: `${res.status} ${res.statusText}` }; }
}

// fetch with the key; JSON in (object body) or FormData; JSON, text or Blob out.
export async function call(method, path, { body, form, as = "json" } = {}) {
  const headers = { [KEY_HEADER]: key.get() || "" };
  let payload;
  if (form) payload = form;
  else if (body !== undefined) { headers["Content-Type"] = "application/json"; payload = JSON.stringify(body); }
  const res = await fetch(path, { method, headers, body: payload, cache: "no-store" });
  if (!res.ok) {
    const err = new ApiError(res.status, await problemOf(res));
    if (res.status === 401) window.dispatchEvent(new CustomEvent("locard:signed-out", { detail: err.message }));
    throw err;
  }
  if (as === "blob") return res.blob();
  if (as === "text") return res.text();
  return res.json();
}

export const get = (path, opts) => call("GET", path, opts);
export const post = (path, opts) => call("POST", path, opts);

// Multipart upload with progress (fetch has none for request bodies): onProgress(sent, total).
export function upload(path, form, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", path);
    xhr.setRequestHeader(KEY_HEADER, key.get() || "");
    xhr.responseType = "json";
    xhr.upload.onprogress = (e) => onProgress && onProgress(e.loaded, e.total);
    xhr.upload.onload = () => onProgress && onProgress(1, 1);
    xhr.onload = () => {
      const body = xhr.response || { detail: `${xhr.status} ${xhr.statusText}` };
      if (xhr.status >= 200 && xhr.status < 300) return resolve(body);
      if (xhr.status === 401) window.dispatchEvent(new CustomEvent("locard:signed-out", { detail: body.detail }));
      reject(new ApiError(xhr.status, body));
    };
    xhr.onerror = () => reject(new ApiError(0, { detail: "the service did not answer (network error)" }));
    xhr.send(form);
  });
}
