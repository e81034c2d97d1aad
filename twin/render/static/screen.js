/* The twin's map screens (district, tower, grid): the screen itself — loading its JSON, the deck, live building
 * states, and when a frame counts as the first full one. Loaded after core, labels, hit, layers, panels and live.
 *
 * The screen JSON is {deck, twin}: `deck` a pydeck document, `twin` the page furniture (title, legend, tooltips,
 * panel, floors, live colouring, level of detail, baked-feature outlines, deferred layers).
 *
 * window.twinScreen exposes what tests and benchmarks read: ready/readyAt (the first frame with every layer but the
 * deferred ones loaded and drawn), complete/completeAt (deferred layers too), frames, events, lastEventAt, states,
 * renderedVersion/renderedAt (the state version last drawn, and when), project().
 */
(function (T) {
  "use strict";

  const RANKS = ["normal", "offline", "fault", "pre_alarm", "fire_alarm"];
  const api = (window.twinScreen = {
    ready: false, readyAt: null, complete: false, completeAt: null, frames: 0, events: 0, errors: [],
    states: new Map(), role: null, deck: null, lastEventId: null, frameTimes: [], streaming: false,
    pushedVersion: 0, renderedVersion: 0, stateVersion: () => stateVersion,
  });

  let deckgl = null;
  let baseLayers = [];
  let meta = null;
  let stateVersion = 0;
  let detailed = false; // zoomed in past meta.lod.zoom: every building extruded
  let released = false; // the deferred layers are in
  let alarmRows = [];

  const stateOf = (id) => api.states.get(String(id)) || "normal";
  const stateColor = (f) => meta.live.colors[stateOf(T.featureId(f))] || meta.live.colors.normal;

  function layersNow() {
    const view = { meta, detailed, stateVersion, stateColor };
    const deferred = released ? [] : meta.defer || [];
    return baseLayers.filter((layer) => !deferred.includes(layer.id)).map((layer) => T.decorate(layer, view));
  }

  let renderQueued = false;
  function redraw() {
    if (renderQueued || !deckgl) return;
    renderQueued = true;
    requestAnimationFrame(() => {
      renderQueued = false;
      api.pushedVersion = stateVersion;
      deckgl.setProps({ layers: layersNow() });
    });
  }

  const allLoaded = () => deckgl.props.layers.every((layer) => layer.isLoaded !== false);

  function onClick(info) {
    const object = info.object;
    const props = object ? object.properties || object : T.hitTest(meta.hit, info.coordinate);
    if (!props) return;
    if (props.panel) return T.showPanel(props.panel);
    if (props.href && object && T.root != null) {
      location.href = T.url(props.href).href;
      return;
    }
    const text = T.tooltipText(info, meta, stateOf);
    if (!text) return;
    const [title, ...rest] = text.split("\n");
    const id = T.featureId(object);
    const links = [];
    if (T.root != null && info.layer && info.layer.id === "buildings" && id) {
      links.push({ href: "map/buildings/" + id, label: "消防三维模型" });
    }
    if (T.root != null && !object && props.href) links.push({ href: props.href, label: "网格视图" });
    T.showPanel({ title, lines: rest, links });
  }

  function onAfterRender() {
    api.frames += 1;
    if (api.renderedVersion !== api.pushedVersion) api.renderedAt = performance.now();
    api.renderedVersion = api.pushedVersion;
    if (api.frameTimes.length < 50) api.frameTimes.push(Math.round(performance.now()));
    if (!api.ready && api.frames > 1 && allLoaded()) {
      api.ready = true;
      api.readyAt = performance.now();
      document.body.classList.add("ready");
      if ((meta.defer || []).length) {
        // what the first frame could do without comes in now, off the critical path
        setTimeout(() => { released = true; redraw(); }, 0);
      }
    }
    if (api.ready && !api.complete && (released || !(meta.defer || []).length) && allLoaded()) {
      const drawnAll = deckgl.props.layers.length === baseLayers.length;
      if (drawnAll) {
        api.complete = true;
        api.completeAt = performance.now();
      }
    }
  }

  function createDeck(props) {
    api.software = T.softwareRenderer();
    detailed = Boolean(meta.lod && props.initialViewState && props.initialViewState.zoom >= meta.lod.zoom);
    deckgl = api.deck = new deck.Deck({
      parent: T.$("map"),
      initialViewState: props.initialViewState,
      views: props.views,
      layers: layersNow(),
      controller: true,
      // multisampling is what a software renderer (SwiftShader in CI, a VM without a GPU) can least afford
      deviceProps: { webgl: { antialias: !api.software, preserveDrawingBuffer: false } },
      getTooltip: (info) => {
        const text = T.tooltipText(info, meta, stateOf);
        return text ? { text, style: T.TOOLTIP_STYLE } : null;
      },
      onClick,
      onViewStateChange: ({ viewState }) => {
        const wanted = Boolean(meta && meta.lod && viewState.zoom >= meta.lod.zoom);
        if (wanted !== detailed) {
          detailed = wanted;
          redraw();
        }
      },
      onAfterRender,
      onError: (error) => {
        api.errors.push(String(error && error.message ? error.message : error));
        console.warn("deck.gl:", error);
      },
    });
  }

  // ---- loading -------------------------------------------------------------------------------------------
  const keyRejected = () => T.setStatus("密钥无效或已吊销，请重新登录", "error");
  const domReady = new Promise((resolve) => {
    if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", resolve, { once: true });
    else resolve();
  });

  // The screen JSON is requested as soon as this script runs, while the deck.gl bundles still download.
  function request() {
    if (T.boot.screen) return Promise.resolve(T.boot.screen);
    const session = T.key.get() ? T.fetchJson("map/session").then((s) => s.role, () => null) : Promise.resolve(null);
    const screen = T.fetchJson(T.boot.screenUrl, location.search, keyRejected);
    return session.then((role) => { api.role = role; return screen; });
  }

  function chooseFigure(value) {
    const params = new URLSearchParams(location.search);
    params.set("figure", value);
    history.replaceState(null, "", location.pathname + "?" + params);
    load().catch(fail);
  }

  function signedInOrOut() {
    T.stopStream();
    load().catch(fail);
  }

  async function load(early) {
    const spec = await (early || request());
    await domReady;
    meta = spec.twin;
    const props = T.convert(spec.deck);
    baseLayers = props.layers || [];
    api.states = new Map(Object.entries((meta.live && meta.live.states) || {}));
    stateVersion += 1;
    alarmRows = (meta.alarms || []).slice();
    document.title = meta.title;
    T.$("title").textContent = meta.title;
    T.$("subtitle").textContent = meta.subtitle || "";
    T.showLegend(meta, chooseFigure);
    T.showLinks(meta);
    T.showPanel(meta.panel);
    T.showFloors(meta.floors);
    T.showAlarms(alarmRows, meta.live);
    T.showAuth(api.role, signedInOrOut);
    api.pushedVersion = stateVersion;
    if (!deckgl) createDeck(props);
    else deckgl.setProps({ layers: layersNow() });
    if (meta.live && T.boot.live && T.key.get()) startLive(meta.live.since);
    else if (T.boot.live && T.root != null) T.setStatus(T.key.get() ? "" : "公众视图 · 登录后显示告警与物联设备", "");
  }

  function fail(error) {
    if (error && error.status === 401) {
      T.setStatus("本视图需要 API 密钥（消防检查员或值班员），请在右上角登录", "error");
      T.showAuth(api.role, signedInOrOut);
      return;
    }
    T.setStatus("加载失败：" + (error && error.message ? error.message : error), "error");
    console.error("twin screen:", error);
  }

  // ---- live building states ------------------------------------------------------------------------------
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

  // the stream raises colours at once; the service's answer is authoritative (a resolved alarm lowers them again)
  async function refreshStates() {
    const ids = [...pending];
    pending.clear();
    if (!ids.length || !T.key.get()) return;
    try {
      const body = await T.fetchJson("map/state", { buildings: ids.join(",") });
      let changed = false;
      for (const id of ids) {
        const state = body.states[id];
        if (state ? api.states.get(id) === state : !api.states.has(id)) continue;
        if (state) api.states.set(id, state);
        else api.states.delete(id);
        changed = true;
      }
      if (changed) { // a confirmation of what the stream said costs no frame
        stateVersion += 1;
        redraw();
      }
    } catch (error) {
      console.warn("twin screen: state refresh failed", error);
    }
  }

  function onEvent(kind, data) {
    api.events += 1;
    api.lastEventAt = performance.now();
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
          severity: data.severity, severity_zh: T.SEVERITY_ZH[data.severity] || "告警",
          text: message.startsWith(name) ? message.slice(name.length).trim() : message, opened_at: data.opened_at,
        });
      } else if (data.action === "resolved") {
        alarmRows = alarmRows.filter((a) => a.id !== data.id);
      }
      T.showAlarms(alarmRows, meta.live);
    } else if (kind === "sensor" && data.status === "offline") {
      escalate(data.building_id, "offline");
    }
    if (data.building_id != null) scheduleRefresh(data.building_id);
  }

  function startLive(since) {
    T.startStream(since, {
      event: onEvent,
      id: (n) => { api.lastEventId = n; },
      connected: (yes) => { api.streaming = yes; },
      status: T.setStatus,
    });
  }

  api.project = (position) => (deckgl ? deckgl.getViewports()[0].project(position) : null);
  api.stateOf = stateOf;
  api.hit = (coordinate) => (meta ? T.hitTest(meta.hit, coordinate) : null);
  api.reload = () => load();

  const early = request();
  early.catch(() => {});
  domReady.then(() => {
    T.tick();
    setInterval(T.tick, 1000);
    return load(early);
  }).catch(fail);
})((window.twin = window.twin || {}));
