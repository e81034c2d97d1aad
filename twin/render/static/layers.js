/* The twin's map screens, part 4 of 6: deck.gl layers from the screen JSON.
 *
 * The `deck` part of a screen is a pydeck document converted by @deck.gl/json; `decorate` then gives each layer what
 * only the page knows: the API key on its requests, the vendored MVT worker (never loaders.gl's CDN default), live
 * state colours, and the level of detail (flat or extruded buildings by zoom).
 */
(function (T) {
  "use strict";

  let converter = null;

  /** deck.gl props from a pydeck JSON document (the bundles load after the page scripts: made on first use). */
  T.convert = function (json) {
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
  };

  /**
   * `layer` as the page draws it now. `view` is {meta, detailed, stateVersion, stateColor}: the screen's furniture,
   * whether the camera is past the level-of-detail zoom, and the live colouring.
   */
  T.decorate = function (layer, view) {
    const { meta } = view;
    const extra = {};
    const remote = typeof layer.props.data === "string" || typeof layer.props.image === "string";
    if (remote) {
      const options = Object.assign({}, layer.props.loadOptions);
      if (T.key.get()) options.fetch = { headers: T.key.headers() };
      const workers = T.boot.workers || {};
      if (layer instanceof deck.MVTLayer && workers.mvt) {
        // parse tiles off the main thread with the worker this service serves (never the CDN default)
        options.worker = true;
        options.mvt = Object.assign({}, options.mvt, { workerUrl: workers.mvt });
      }
      extra.loadOptions = options;
    }
    if (meta.live && meta.live.layers.includes(layer.id)) {
      extra.getFillColor = view.stateColor;
      extra.updateTriggers = Object.assign({}, layer.props.updateTriggers, { getFillColor: view.stateVersion });
    }
    const lod = meta.lod;
    if (lod && layer.id === lod.flat) extra.extruded = view.detailed;
    if (lod && [].concat(lod.detail || []).includes(layer.id)) extra.visible = !view.detailed;
    if (lod && (lod.near || []).includes(layer.id) && !(layer instanceof deck.MVTLayer)) extra.visible = view.detailed;
    return Object.keys(extra).length ? layer.clone(extra) : layer;
  };

  /** True when WebGL is drawn by a software renderer (SwiftShader, llvmpipe): no multisampling then. */
  T.softwareRenderer = function () {
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
  };
})((window.twin = window.twin || {}));
