/* The twin's map screens, part 5 of 6: the page furniture around the map — side panel, tower floor list, legend
 * with the grid-figure choice, links, open-alarm list, status line, login box and clock.
 */
(function (T) {
  "use strict";

  const $ = (T.$ = (id) => document.getElementById(id));

  /** An element with attributes and children. */
  const el = (T.el = function (tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (name === "class") node.className = value;
      else if (name === "style") node.style.cssText = value;
      else node.setAttribute(name, value);
    }
    for (const child of children) node.append(child);
    return node;
  });

  /** The side panel: {title, lines, links}. */
  T.showPanel = function (panel) {
    const box = $("panel");
    box.replaceChildren();
    if (!panel) return;
    box.append(el("h2", {}, panel.title || ""));
    for (const line of panel.lines || []) if (line) box.append(el("p", {}, line));
    for (const link of panel.links || []) box.append(el("a", { href: T.url(link.href).href, class: "button" }, link.label));
  };

  /** The tower's floors, top first; clicking one shows what is on it. Refuge floors are marked 避难层. */
  T.showFloors = function (floors) {
    const box = $("floors");
    box.replaceChildren();
    if (!floors || !floors.length) return;
    box.append(el("h2", {}, `楼层 ${floors.length}`));
    const list = el("ol", { role: "listbox", "aria-label": "楼层" });
    for (const floor of floors) {
      const item = el("li", { "data-level": String(floor.id), role: "option",
        class: [floor.refuge ? "refuge" : "", floor.state ? "state-" + floor.state : ""].join(" ").trim() },
      el("b", {}, floor.name), floor.refuge ? el("span", { class: "tag" }, "避难层") : "",
      floor.state ? el("span", { class: "tag alarm" }, T.SEVERITY_ZH[floor.state] || "告警") : "",
      el("small", {}, floor.summary || ""));
      item.addEventListener("click", () => {
        for (const other of list.children) other.classList.remove("selected");
        item.classList.add("selected");
        T.showPanel(floor.panel);
      });
      list.append(item);
    }
    box.append(list);
  };

  /** Legend blocks, and the grid-figure selector that calls `onFigure(value)`. */
  T.showLegend = function (meta, onFigure) {
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
    if (figure && T.root != null) {
      const select = el("select", { id: "figure", "aria-label": "网格专题" });
      for (const [value, label] of figure.choices) {
        const option = el("option", { value }, label);
        if (value === figure.current) option.selected = true;
        select.append(option);
      }
      select.addEventListener("change", () => onFigure(select.value));
      box.prepend(el("section", {}, el("h3", {}, "网格专题"), select));
    }
  };

  T.showLinks = function (meta) {
    const nav = $("links");
    nav.replaceChildren();
    if (T.root == null) return;
    for (const link of meta.links || []) nav.append(el("a", { href: T.url(link.href).href }, link.label));
  };

  /** The open-alarm list (rows: {building_id, building, severity, severity_zh, text, opened_at}). */
  T.showAlarms = function (rows, live) {
    const box = $("alarms");
    box.replaceChildren();
    if (!live && !rows.length) return;
    box.append(el("h2", {}, `未处置告警 ${rows.length}`));
    const list = el("ol", {});
    for (const a of rows.slice(0, 30)) {
      const time = a.opened_at ? new Date(a.opened_at).toLocaleTimeString("zh-CN", { hour12: false }) : "";
      const item = el("li", { class: T.SEVERITY_CLASS[a.severity] || "fault" },
        el("b", {}, a.severity_zh || "告警"), ` ${a.building || ""} · ${a.text || ""} `, el("small", {}, time));
      if (a.building_id != null && T.root != null) {
        item.addEventListener("click", () => { location.href = T.url("map/buildings/" + a.building_id).href; });
      }
      list.append(item);
    }
    box.append(list);
  };

  T.setStatus = function (text, kind) {
    const box = $("status");
    box.textContent = text;
    box.className = kind || "";
  };

  /** The login box (or who is signed in); `onChange` runs after signing in or out. */
  T.showAuth = function (role, onChange) {
    const box = $("auth");
    box.replaceChildren();
    if (T.root == null) return;
    if (T.key.get()) {
      const out = el("button", { type: "button" }, "退出");
      out.addEventListener("click", () => { T.key.forget(); onChange(); });
      box.append(el("span", {}, `已登录 · ${T.ROLE_ZH[role] || role || ""}`), out);
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
      T.key.set(key, remember.checked);
      onChange();
    });
    box.append(form);
  };

  T.tick = function () {
    $("clock").textContent = new Date().toLocaleString("zh-CN", { hour12: false, timeZone: "Asia/Shanghai" });
  };
})((window.twin = window.twin || {}));
