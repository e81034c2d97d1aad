/* The twin's map screens (district, tower, grid): deck.gl served by the twin itself, nothing from the internet.
 *
 * The page carries a boot block (#twin-boot): either the screen itself (standalone files) or the URL of its JSON,
 * which the service renders for the caller's role. The screen JSON is {deck, twin}: `deck` is a pydeck document
 * converted by @deck.gl/json, `twin` the page furniture (title, legend, tooltips, panel, live colouring).
 *
 * API key: staff data (sensors, alarms, fire models) needs a key. The page takes it from the address fragment
 * (#key=…, removed from the address bar at once) or from the login box, keeps it in sessionStorage (localStorage
 * when "记住" is ticked) and sends it as X-API-Key on every request it makes: the screen JSON, vector tiles and the
 * alarm stream (read with fetch, since EventSource cannot send headers).
 *
 * window.twinScreen exposes what tests and benchmarks read: ready, readyAt, frames, events, states, project().
 */
(function () {
  "use strict";

  const boot = JSON.parse(document.getElementById("twin-boot").textContent);
  const root = boot.root == null ? null : String(boot.root).replace(/\/$/, "");
  const KEY = "twin.apiKey";
  const workers = boot.workers || {};
  const RANKS = ["normal", "offline", "fault", "pre_alarm", "fire_alarm"];
  const $ = (id) => document.getElementById(id);
  const api = (window.twinScreen = {
    ready: false, readyAt: null, frames: 0, events: 0, errors: [], states: new Map(), role: null,
    deck: null, lastEventId: null, frameTimes: [], streaming: false, pushedVersion: 0, renderedVersion: 0,
    stateVersion: () => stateVersion,
  });

  // ---- the API key ---------------------------------------------------------------------------------------
  function readKey() {
    const match = /(?:^#|&)key=([^&]+)/.exec(location.hash);
    if (match) {
      sessionStorage.setItem(KEY, decodeURIComponent(match[1]));
      history.replaceState(null, "", location.pathname + location.search);
    }
    return sessionStorage.getItem(KEY) || localStorage.getItem(KEY) || null;
  }
  let apiKey = root == null ? null : readKey();
  const authHeaders = () => (apiKey ? { "X-API-Key": apiKey } : {});
  function forgetKey() {
    apiKey = null;
    sessionStorage.removeItem(KEY);
    localStorage.removeItem(KEY);
  }
  const url = (path) => new URL((root || "") + "/" + String(path).replace(/^\//, ""), location.href);

  // ---- deck.gl from JSON (the bundles load after this script, so the converter is made on first use) -------
  let converter = null;
  function convert(json) {
    if (!converter) {
      const classes = {};
      for (const [name, value] of Object.entries(deck)) {
        if (typeof value === "function" && /^[A-Z]/.test(name)) classes[name] = value;
      }
      converter = new deck.JSONConverter({
        configuration: new deck.JSONConfiguration({ classes, enumerations: { COORDINATE_SYSTEM: deck.COORDINATE_SYSTEM } }),
      });
    }
    return converter.convert(json);
  }

  let deckgl = null;
  let baseLayers = [];
  let meta = null;
  let stateVersion = 0;
  let detailed = false; // zoomed in past meta.lod.zoom: every building extruded

  const featureId = (f) => {
    const id = f && (f.id != null ? f.id : f.properties && f.properties.id);
    return id == null ? null : String(id);
  };
  const stateOf = (id) => api.states.get(String(id)) || "normal";
  function stateColor(f) {
    const colors = meta.live.colors;
    return colors[stateOf(featureId(f))] || colors.normal;
  }

  function decorate(layer) {
    const extra = {};
    if (typeof layer.props.data === "string") {
      const options = Object.assign({}, layer.props.loadOptions);
      if (apiKey) options.fetch = { headers: authHeaders() };
      if (layer instanceof deck.MVTLayer && workers.mvt) {
        // parse tiles off the main thread with the worker this service serves (never the CDN default)
        options.worker = true;
        options.mvt = Object.assign({}, options.mvt, { workerUrl: workers.mvt });
      }
      extra.loadOptions = options;
    }
    if (meta.live && meta.live.layers.includes(layer.id)) {
      extra.getFillColor = stateColor;
      extra.updateTriggers = Object.assign({}, layer.props.updateTriggers, { getFillColor: stateVersion });
    }
    const lod = meta.lod;
    if (lod && layer.id === lod.flat) extra.extruded = detailed;
    if (lod && layer.id === lod.detail) extra.visible = !detailed;
    if (lod && (lod.near || []).includes(layer.id) && !(layer instanceof deck.MVTLayer)) extra.visible = detailed;
    return Object.keys(extra).length ? layer.clone(extra) : layer;
  }

  let renderQueued = false;
  function redraw() {
    if (renderQueued || !deckgl) return;
    renderQueued = true;
    requestAnimationFrame(() => {
      renderQueued = false;
      api.pushedVersion = stateVersion;
      deckgl.setProps({ layers: baseLayers.map(decorate) });
    });
  }

  function format(value) {
    if (value == null || value === "") return "—";
    if (typeof value === "number") return Number.isInteger(value) ? value.toLocaleString("zh-CN") : value.toFixed(1);
    return String(value);
  }

  function tooltipText(info) {
    const object = info.object;
    if (!object) return null;
    const props = object.properties || object;
    if (props.tip) return props.tip;
    const template = meta && info.layer && meta.tooltips[info.layer.id];
    if (!template) return null;
    return template.replace(/\{(\w+)\}/g, (_, name) => {
      if (name === "_state") return meta.live ? meta.live.labels[stateOf(featureId(object))] || "正常" : "";
      return format(props[name]);
    }).replace(/\n—(?=\n|$)/g, "");
  }

  const TOOLTIP_STYLE = {
    backgroundColor: "rgba(9, 17, 29, 0.94)", color: "#e6efff", border: "1px solid #2b4d70", borderRadius: "4px",
    padding: "6px 9px", fontSize: "13px", lineHeight: "1.5", whiteSpace: "pre-line", maxWidth: "360px",
    fontFamily: '"Noto Sans CJK SC", "Noto Sans SC", sans-serif',
  };

  function onClick(info) {
    const object = info.object;
    if (!object) return;
    const props = object.properties || object;
    if (props.panel) return showPanel(props.panel);
    if (props.href && root != null) {
      location.href = url(props.href).href;
      return;
    }
    const text = tooltipText(info);
    if (text) {
      const [title, ...rest] = text.split("\n");
      const id = featureId(object);
      const links = info.layer && info.layer.id === "buildings" && root != null && id
        ? [{ href: "map/buildings/" + id, label: "消防三维模型" }] : [];
      showPanel({ title, lines: rest, links });
    }
  }

  function allLoaded() {
    return deckgl.props.layers.every((layer) => layer.isLoaded !== false);
  }

  function softwareRenderer() {
    try {
      const gl = document.createElement("canvas").getContext("webgl2");
      const info = gl && gl.getExtension("WEBGL_debug_renderer_info");
      const name = info ? String(gl.getParameter(info.UNMASKED_RENDERER_WEBGL)) : "";
      const lose = gl && gl.getExtension("WEBGL_lose_context");
      if (lose) lose.loseContext();
      return /swiftshader|llvmpipe|softpipe|software/i.test(name);
    } catch (_) {
      return false;
    }
  }

  function createDeck(props) {
    api.software = softwareRenderer();
    detailed = Boolean(meta.lod && props.initialViewState && props.initialViewState.zoom >= meta.lod.zoom);
    deckgl = api.deck = new deck.Deck({
      parent: $("map"),
      initialViewState: props.initialViewState,
      views: props.views,
      layers: baseLayers.map(decorate),
      controller: true,
      // multisampling is what a software renderer (SwiftShader in CI, a VM without a GPU) can least afford
      deviceProps: { webgl: { antialias: !api.software, preserveDrawingBuffer: false } },
      getTooltip: (info) => {
        const text = tooltipText(info);
        return text ? { text, style: TOOLTIP_STYLE } : null;
      },
      onClick,
      onViewStateChange: ({ viewState }) => {
        const wanted = Boolean(meta && meta.lod && viewState.zoom >= meta.lod.zoom);
        if (wanted !== detailed) {
          detailed = wanted;
          redraw();
        }
      },
      onAfterRender: () => {
        api.frames += 1;
        api.renderedVersion = api.pushedVersion;
        if (api.frameTimes.length < 50) api.frameTimes.push(Math.round(performance.now()));
        if (!api.ready && api.frames > 1 && allLoaded()) {
          api.ready = true;
          api.readyAt = performance.now();
          document.body.classList.add("ready");
        }
      },
      onError: (error) => {
        api.errors.push(String(error && error.message ? error.message : error));
        console.warn("deck.gl:", error);
      },
    });
  }

  // ---- the page furniture ----------------------------------------------------------------------------------
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (name === "class") node.className = value;
      else if (name === "style") node.style.cssText = value;
      else node.setAttribute(name, value);
    }
    for (const child of children) node.append(child);
    return node;
  }

  function showPanel(panel) {
    const box = $("panel");
    box.replaceChildren();
    if (!panel) return;
    box.append(el("h2", {}, panel.title || ""));
    for (const line of panel.lines || []) if (line) box.append(el("p", {}, line));
    for (const link of panel.links || []) box.append(el("a", { href: url(link.href).href, class: "button" }, link.label));
  }

  function showLegend() {
    const box = $("legend");
    box.replaceChildren();
    for (const block of meta.legend || []) {
      const section = el("section", {}, el("h3", {}, block.title));
      for (const item of block.items) {
        section.append(el("div", { class: "item" }, el("i", { style: "background:" + item.color }), item.label));
      }
      box.append(section);
    }
    const figure = meta.controls && meta.controls.figure;
    if (figure && root != null) {
      const select = el("select", { id: "figure", "aria-label": "网格专题" });
      for (const [value, label] of figure.choices) {
        const option = el("option", { value }, label);
        if (value === figure.current) option.selected = true;
        select.append(option);
      }
      select.addEventListener("change", () => {
        const params = new URLSearchParams(location.search);
        params.set("figure", select.value);
        history.replaceState(null, "", location.pathname + "?" + params);
        load().catch(fail);
      });
      box.prepend(el("section", {}, el("h3", {}, "网格专题"), select));
    }
  }

  function showLinks() {
    const nav = $("links");
    nav.replaceChildren();
    if (root == null) return;
    for (const link of meta.links || []) nav.append(el("a", { href: url(link.href).href }, link.label));
  }

  const SEVERITY_CLASS = { fire_alarm: "fire", pre_alarm: "pre", threshold: "fault", fault: "fault", offline: "off" };
  let alarmRows = [];
  function showAlarms() {
    const box = $("alarms");
    box.replaceChildren();
    if (!meta.live && !alarmRows.length) return;
    box.append(el("h2", {}, `未处置告警 ${alarmRows.length}`));
    const list = el("ol", {});
    for (const a of alarmRows.slice(0, 30)) {
      const time = a.opened_at ? new Date(a.opened_at).toLocaleTimeString("zh-CN", { hour12: false }) : "";
      const item = el("li", { class: SEVERITY_CLASS[a.severity] || "fault" },
        el("b", {}, a.severity_zh || "告警"), ` ${a.building || ""} · ${a.text || ""} `, el("small", {}, time));
      if (a.building_id != null && root != null) {
        item.addEventListener("click", () => { location.href = url("map/buildings/" + a.building_id).href; });
      }
      list.append(item);
    }
    box.append(list);
  }

  function setStatus(text, kind) {
    const box = $("status");
    box.textContent = text;
    box.className = kind || "";
  }

  function showAuth() {
    const box = $("auth");
    box.replaceChildren();
    if (root == null) return;
    if (apiKey) {
      const out = el("button", { type: "button" }, "退出");
      out.addEventListener("click", () => { forgetKey(); stopStream(); load().catch(fail); });
      box.append(el("span", {}, `已登录 · ${ROLE_ZH[api.role] || api.role || ""}`), out);
      return;
    }
    const input = el("input", { type: "password", placeholder: "API 密钥（值班员/检查员）", autocomplete: "off" });
    const remember = el("input", { type: "checkbox", title: "在本机记住密钥" });
    const go = el("button", { type: "submit" }, "登录");
    const form = el("form", {}, input, el("label", {}, remember, "记住"), go);
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const key = input.value.trim();
      if (!key) return;
      apiKey = key;
      (remember.checked ? localStorage : sessionStorage).setItem(KEY, key);
      load().catch(fail);
    });
    box.append(form);
  }
  const ROLE_ZH = { public: "公众", inspector: "消防检查员", operator: "值班员", admin: "管理员", device: "设备" };

  function tick() {
    $("clock").textContent = new Date().toLocaleString("zh-CN", { hour12: false, timeZone: "Asia/Shanghai" });
  }

  // ---- loading -------------------------------------------------------------------------------------------
  async function fetchJson(path, params) {
    const target = url(path);
    for (const [name, value] of new URLSearchParams(params || "")) target.searchParams.set(name, value);
    const response = await fetch(target, { headers: authHeaders() });
    if (response.status === 401 && apiKey) {
      forgetKey();
      setStatus("密钥无效或已吊销，请重新登录", "error");
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
  }

  const domReady = new Promise((resolve) => {
    if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", resolve, { once: true });
    else resolve();
  });

  // The screen JSON is requested as soon as this script runs, while the deck.gl bundles still download.
  function request() {
    if (boot.screen) return Promise.resolve(boot.screen);
    const session = apiKey ? fetchJson("map/session").then((s) => s.role, () => null) : Promise.resolve(null);
    const screen = fetchJson(boot.screenUrl, location.search);
    return session.then((role) => { api.role = role; return screen; });
  }

  async function load(early) {
    const spec = await (early || request());
    await domReady;
    meta = spec.twin;
    const props = convert(spec.deck);
    baseLayers = props.layers || [];
    api.states = new Map(Object.entries((meta.live && meta.live.states) || {}));
    stateVersion += 1;
    alarmRows = (meta.alarms || []).slice();
    document.title = meta.title;
    $("title").textContent = meta.title;
    $("subtitle").textContent = meta.subtitle || "";
    showLegend();
    showLinks();
    showPanel(meta.panel);
    showAlarms();
    showAuth();
    api.pushedVersion = stateVersion;
    if (!deckgl) createDeck(props);
    else deckgl.setProps({ layers: baseLayers.map(decorate) });
    if (meta.live && boot.live && apiKey) startStream(meta.live.since);
    else if (boot.live && root != null) setStatus(apiKey ? "" : "公众视图 · 登录后显示告警与物联设备", "");
  }

  function fail(error) {
    if (error && error.status === 401) {
      setStatus("本视图需要 API 密钥（消防检查员或值班员），请在右上角登录", "error");
      showAuth();
      return;
    }
    setStatus("加载失败：" + (error && error.message ? error.message : error), "error");
    console.error("twin screen:", error);
  }

  // ---- the live alarm stream (Server-Sent Events over fetch) ---------------------------------------------
  let stream = null;
  const pending = new Set();
  let refreshTimer = null;

  function escalate(id, state) {
    if (!state || RANKS.indexOf(state) <= RANKS.indexOf(stateOf(id))) return;
    api.states.set(String(id), state);
    stateVersion += 1;
    redraw();
  }

  function scheduleRefresh(id) {
    pending.add(String(id));
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(refreshStates, 400);
  }

  async function refreshStates() {
    const ids = [...pending];
    pending.clear();
    if (!ids.length || !apiKey) return;
    try {
      const body = await fetchJson("map/state", { buildings: ids.join(",") });
      for (const id of ids) {
        const state = body.states[id];
        if (state) api.states.set(id, state);
        else api.states.delete(id);
      }
      stateVersion += 1;
      redraw();
    } catch (error) {
      console.warn("twin screen: state refresh failed", error);
    }
  }

  function handle(kind, data) {
    api.events += 1;
    if (kind === "reset") {
      load().catch(fail);
      return;
    }
    if (kind === "alarm") {
      if (data.action === "opened") {
        escalate(data.building_id, meta.live.severity[data.severity]);
        const name = (meta.live.names || {})[String(data.building_id)] || `建筑 ${data.building_id}`;
        const message = String(data.message || data.alarm_type || "");
        alarmRows.unshift({
          id: data.id, building_id: data.building_id, building: name,
          severity: data.severity, severity_zh: SEVERITY_ZH[data.severity] || "告警",
          text: message.startsWith(name) ? message.slice(name.length).trim() : message, opened_at: data.opened_at,
        });
      } else if (data.action === "resolved") {
        alarmRows = alarmRows.filter((a) => a.id !== data.id);
      }
      showAlarms();
    } else if (kind === "sensor" && data.status === "offline") {
      escalate(data.building_id, "offline");
    }
    if (data.building_id != null) scheduleRefresh(data.building_id);
  }
  const SEVERITY_ZH = { fire_alarm: "火警", pre_alarm: "预警", fault: "故障", threshold: "超限", offline: "离线" };

  function stopStream() {
    if (stream) stream.abort();
    stream = null;
  }

  function startStream(since) {
    stopStream();
    const controller = (stream = new AbortController());
    let cursor = since == null ? null : since;
    (async () => {
      while (!controller.signal.aborted) {
        try {
          const params = cursor == null ? "" : "since=" + cursor;
          const target = url("alarms/stream");
          if (params) target.search = params;
          const response = await fetch(target, {
            headers: Object.assign({ Accept: "text/event-stream" }, authHeaders()), signal: controller.signal,
          });
          if (response.status === 401 || response.status === 403) {
            setStatus("实时告警需要值班员或检查员密钥", "error");
            return;
          }
          if (!response.ok) throw new Error("stream " + response.status);
          setStatus("● 实时告警已连接", "ok");
          api.streaming = true;
          const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
          let buffer = "";
          for (;;) {
            const { value, done } = await reader.read();
            if (done) break;
            buffer += value.replace(/\r\n/g, "\n");
            let cut;
            while ((cut = buffer.indexOf("\n\n")) >= 0) {
              const block = buffer.slice(0, cut);
              buffer = buffer.slice(cut + 2);
              let kind = "message";
              const data = [];
              for (const line of block.split("\n")) {
                if (line.startsWith("id:")) cursor = api.lastEventId = Number(line.slice(3).trim());
                else if (line.startsWith("event:")) kind = line.slice(6).trim();
                else if (line.startsWith("data:")) data.push(line.slice(5).trim());
              }
              if (data.length) handle(kind, JSON.parse(data.join("\n")));
            }
          }
        } catch (error) {
          if (controller.signal.aborted) return;
          console.warn("twin screen: alarm stream interrupted", error);
        }
        api.streaming = false;
        setStatus("实时告警重连中…", "warn");
        await new Promise((resolve) => setTimeout(resolve, 2000));
      }
    })();
  }

  api.project = (position) => (deckgl ? deckgl.getViewports()[0].project(position) : null);
  api.stateOf = stateOf;
  api.reload = () => load();

  const early = request();
  early.catch(() => {});
  domReady.then(() => {
    tick();
    setInterval(tick, 1000);
    return load(early);
  }).catch(fail);
})();
