/* The twin's map screens, part 3 of 6: pointing at what is baked into the ground image.
 *
 * The district screen's grids and roads are drawn by the service into one image (a software renderer pays seconds
 * for each extra layer on the first frame). The screen JSON keeps their outlines in `twin.hit`; this tests the
 * ground coordinate under the pointer against them, so they keep their tooltips and clicks without being drawn.
 */
(function (T) {
  "use strict";

  const M_PER_DEG = 111320;

  function inside(ring, x, y) {
    let yes = false;
    for (let i = 0, j = ring.length - 1; i < ring.length; j = i++) {
      const [xi, yi] = ring[i];
      const [xj, yj] = ring[j];
      if ((yi > y) !== (yj > y) && x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) yes = !yes;
    }
    return yes;
  }

  function distanceM(path, lon, lat) {
    const kx = Math.cos((lat * Math.PI) / 180) * M_PER_DEG;
    let best = Infinity;
    for (let i = 1; i < path.length; i++) {
      const ax = (path[i - 1][0] - lon) * kx, ay = (path[i - 1][1] - lat) * M_PER_DEG;
      const bx = (path[i][0] - lon) * kx, by = (path[i][1] - lat) * M_PER_DEG;
      const dx = bx - ax, dy = by - ay;
      const t = Math.max(0, Math.min(1, -(ax * dx + ay * dy) / (dx * dx + dy * dy || 1)));
      best = Math.min(best, Math.hypot(ax + t * dx, ay + t * dy));
    }
    return best;
  }

  /** The road (within its half width, at least 6 m) or else the grid at [lon, lat]: {tip, href?} or null. */
  T.hitTest = function (hit, coordinate) {
    if (!hit || !coordinate) return null;
    const [lon, lat] = coordinate;
    for (const road of hit.roads || []) {
      const reach = Math.max(road.width / 2, 6);
      if (road.paths.some((path) => distanceM(path, lon, lat) <= reach)) return road;
    }
    for (const grid of hit.grids || []) {
      if (grid.rings.some((ring) => inside(ring, lon, lat))) return grid;
    }
    return null;
  };
})((window.twin = window.twin || {}));
