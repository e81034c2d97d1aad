#!/usr/bin/env bash
# Fetch the browser bundles the service serves (deck.gl, @deck.gl/json and loaders.gl's MVT worker for the map
# screens; maplibre-gl for the MapLibre client test) from the npm registry, at the versions package-lock.json pins,
# check each package tarball against the lock's integrity hash, and unpack only the files package.json lists under
# "twinAssets" into build/vendor/NAME@VERSION/ (git-ignored), with a manifest.json the service reads.
#
# Why not `npm ci`: the service needs a few self-contained bundles (a few MB), while a full install of
# deck.gl's dependency tree is 360 packages and over 600 MB. `npm pack` fetches exactly the pinned tarballs through
# the ordinary npm client. The service serves these files itself at /static/vendor/...; no page loads from a CDN.
# TWIN_ASSETS_DIR puts them elsewhere. Fast (no network) when everything is already in place.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dest="${TWIN_ASSETS_DIR:-$root/build/vendor}"

log() { echo "ensure_assets: $*" >&2; }

if ! command -v npm >/dev/null 2>&1 || ! command -v node >/dev/null 2>&1; then
    log "installing Debian's nodejs and npm"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq nodejs npm >/tmp/twin-apt-node.log 2>&1 \
        || { apt-get update -qq >>/tmp/twin-apt-node.log 2>&1 && apt-get install -y -qq nodejs npm >>/tmp/twin-apt-node.log 2>&1; }
fi

mkdir -p "$dest"
node - "$root" "$dest" <<'JS'
const fs = require("fs");
const os = require("os");
const path = require("path");
const crypto = require("crypto");
const { execFileSync } = require("child_process");

const [root, dest] = process.argv.slice(2);
const pkg = JSON.parse(fs.readFileSync(path.join(root, "package.json"), "utf8"));
const lock = JSON.parse(fs.readFileSync(path.join(root, "package-lock.json"), "utf8"));
const manifest = { packages: {} };

for (const [name, files] of Object.entries(pkg.twinAssets)) {
  const locked = lock.packages[`node_modules/${name}`];
  if (!locked || !locked.integrity) throw new Error(`${name} is not pinned in package-lock.json`);
  const { version, integrity } = locked;
  const target = path.join(dest, `${name}@${version}`);
  const stamp = path.join(target, ".integrity");
  const present = fs.existsSync(stamp) && fs.readFileSync(stamp, "utf8") === integrity &&
    files.every((f) => fs.existsSync(path.join(target, f)));
  if (!present) {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "twin-assets-"));
    try {
      const out = execFileSync("npm", ["pack", `${name}@${version}`, "--pack-destination", tmp, "--json", "--silent"],
        { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] });
      const tarball = path.join(tmp, JSON.parse(out)[0].filename);
      const [algorithm, expected] = integrity.split(/-(.*)/s);
      const actual = crypto.createHash(algorithm).update(fs.readFileSync(tarball)).digest("base64");
      if (actual !== expected) throw new Error(`${name}@${version}: tarball hash ${actual} != lock ${expected}`);
      execFileSync("tar", ["-xzf", tarball, "-C", tmp, ...files.map((f) => `package/${f}`)]);
      fs.rmSync(target, { recursive: true, force: true });
      fs.mkdirSync(target, { recursive: true });
      for (const f of files) {
        fs.mkdirSync(path.dirname(path.join(target, f)), { recursive: true });
        fs.copyFileSync(path.join(tmp, "package", f), path.join(target, f));
      }
      fs.writeFileSync(stamp, integrity);
      console.error(`ensure_assets: ${name}@${version} unpacked into ${target}`);
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  }
  manifest.packages[name] = { version, integrity, files };
}
const text = JSON.stringify(manifest, null, 2) + "\n";
const file = path.join(dest, "manifest.json");
if (!fs.existsSync(file) || fs.readFileSync(file, "utf8") !== text) fs.writeFileSync(file, text);
JS
