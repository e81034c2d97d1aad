/* The twin's map screens, part 1 of 6: talking to the service — the boot block, URLs, the API key, JSON fetches.
 *
 * Every script of the screens is served by the twin itself (nothing from a CDN) and shares one namespace,
 * window.twin. The page carries a boot block (#twin-boot): either the screen itself (standalone files) or the URL
 * of its JSON, which the service renders for the caller's role.
 *
 * API key: staff data (sensors, alarms, fire models) needs a key. The page takes it from the address fragment
 * (#key=…, removed from the address bar at once) or from the login box, keeps it in sessionStorage (localStorage
 * when "记住" is ticked) and sends it as X-API-Key on every request it makes: the screen JSON, vector tiles, the
 * baked ground image and the alarm stream.
 */
(function (T) {
  "use strict";

  const boot = (T.boot = JSON.parse(document.getElementById("twin-boot").textContent));
  const root = (T.root = boot.root == null ? null : String(boot.root).replace(/\/$/, ""));
  const STORE = "twin.apiKey";

  function readKey() {
    const match = /(?:^#|&)key=([^&]+)/.exec(location.hash);
    if (match) {
      sessionStorage.setItem(STORE, decodeURIComponent(match[1]));
      history.replaceState(null, "", location.pathname + location.search);
    }
    return sessionStorage.getItem(STORE) || localStorage.getItem(STORE) || null;
  }

  let apiKey = root == null ? null : readKey();
  T.key = {
    get: () => apiKey,
    set(key, remember) {
      apiKey = key;
      (remember ? localStorage : sessionStorage).setItem(STORE, key);
    },
    forget() {
      apiKey = null;
      sessionStorage.removeItem(STORE);
      localStorage.removeItem(STORE);
    },
    headers: () => (apiKey ? { "X-API-Key": apiKey } : {}),
  };

  /** A URL of the service (relative to its root path). */
  T.url = (path) => new URL((root || "") + "/" + String(path).replace(/^\//, ""), location.href);

  /** GET a JSON document with the key; a rejected key is dropped (the caller falls back to the public view). */
  T.fetchJson = async function fetchJson(path, params, onRejectedKey) {
    const target = T.url(path);
    for (const [name, value] of new URLSearchParams(params || "")) target.searchParams.set(name, value);
    const response = await fetch(target, { headers: T.key.headers() });
    if (response.status === 401 && apiKey) {
      T.key.forget();
      if (onRejectedKey) onRejectedKey();
      return fetchJson(path, params);
    }
    if (!response.ok) {
      let message = `${response.status}`;
      try { message = (await response.json()).description || message; } catch (_) { /* not JSON */ }
      const error = new Error(message);
      error.status = response.status;
      throw error;
    }
    return response.json();
  };
})((window.twin = window.twin || {}));
