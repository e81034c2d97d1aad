/* The twin's map screens, part 2 of 6: Chinese labels and tooltips — names of roles, severities and states, number
 * formatting, the tooltip text of a picked feature (its own `tip`, or the screen's template for tile features) and
 * the tooltip's look.
 */
(function (T) {
  "use strict";

  T.ROLE_ZH = { public: "公众", inspector: "消防检查员", operator: "值班员", admin: "管理员", device: "设备" };
  T.SEVERITY_ZH = { fire_alarm: "火警", pre_alarm: "预警", fault: "故障", threshold: "超限", offline: "离线" };
  T.SEVERITY_CLASS = { fire_alarm: "fire", pre_alarm: "pre", threshold: "fault", fault: "fault", offline: "off" };

  /** A property value as a label ("—" when missing; numbers in Chinese grouping). */
  T.format = function (value) {
    if (value == null || value === "") return "—";
    if (typeof value === "number") return Number.isInteger(value) ? value.toLocaleString("zh-CN") : value.toFixed(1);
    return String(value);
  };

  T.featureId = (f) => {
    const id = f && (f.id != null ? f.id : f.properties && f.properties.id);
    return id == null ? null : String(id);
  };

  /** The tooltip of a deck.gl pick: the feature's `tip`, the layer's template, or a baked grid/road under it. */
  T.tooltipText = function (info, meta, stateOf) {
    const object = info.object;
    if (!object) {
      const hit = meta && T.hitTest(meta.hit, info.coordinate);
      return hit ? hit.tip : null;
    }
    const props = object.properties || object;
    if (props.tip) return props.tip;
    const template = meta && info.layer && meta.tooltips[info.layer.id];
    if (!template) return null;
    return template.replace(/\{(\w+)\}/g, (_, name) => {
      if (name === "_state") return meta.live ? meta.live.labels[stateOf(T.featureId(object))] || "正常" : "";
      return T.format(props[name]);
    }).replace(/\n—(?=\n|$)/g, "");
  };

  T.TOOLTIP_STYLE = {
    backgroundColor: "rgba(9, 17, 29, 0.94)", color: "#e6efff", border: "1px solid #2b4d70", borderRadius: "4px",
    padding: "6px 9px", fontSize: "13px", lineHeight: "1.5", whiteSpace: "pre-line", maxWidth: "360px",
    fontFamily: '"Noto Sans CJK SC", "Noto Sans SC", sans-serif',
  };
})((window.twin = window.twin || {}));
