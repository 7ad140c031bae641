"""Build the Debian package the way a packager does: dpkg-buildpackage
-us -uc -b in a copy of the tree (the build cleans build/, which the tests
run from).  tests/bare/test_install.py checks the build; the lab installs
the .deb (cached(): built once per state of the tree)."""

import hashlib
import os
import shutil
import subprocess

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NAME = "kvm-unsync-exporter"


def tree_files():
    """The tree's files as git sees them (tracked and new, not ignored)."""
    out = subprocess.run(["git", "ls-files", "-co", "--exclude-standard",
                          "-z"], cwd=REPO, check=True, capture_output=True,
                         text=True).stdout.split("\0")
    return sorted(rel for rel in out
                  if rel and os.path.isfile(os.path.join(REPO, rel)))


def deb_name():
    with open(os.path.join(REPO, "VERSION")) as f:
        version = f.read().strip()
    return "%s_%s_amd64.deb" % (NAME, version)


def build(outdir, timeout=900):
    """Copy the tree to OUTDIR/NAME and build there; returns (the
    CompletedProcess of dpkg-buildpackage, the .deb's path)."""
    src = os.path.join(outdir, NAME)
    os.mkdir(src)
    for rel in tree_files():
        os.makedirs(os.path.dirname(os.path.join(src, rel)), exist_ok=True)
        shutil.copy2(os.path.join(REPO, rel), os.path.join(src, rel))
    r = subprocess.run(["dpkg-buildpackage", "-us", "-uc", "-b"], cwd=src,
                       capture_output=True, text=True, timeout=timeout)
    return r, os.path.join(outdir, deb_name())


def cached(cache_dir):
    """The .deb of the tree as it is now, built under CACHE_DIR/<key> unless
    a build of the same files is there already; older builds are removed."""
    h = hashlib.sha256()
    for rel in tree_files():
        h.update(rel.encode() + b"\0")
        path = os.path.join(REPO, rel)
        h.update(b"x" if os.access(path, os.X_OK) else b"-")
        with open(path, "rb") as f:
            h.update(hashlib.sha256(f.read()).digest())
    key = h.hexdigest()[:16]
    deb = os.path.join(cache_dir, key, deb_name())
    if os.path.exists(deb):
        return deb
    os.makedirs(cache_dir, exist_ok=True)
    for old in os.listdir(cache_dir):
        shutil.rmtree(os.path.join(cache_dir, old), ignore_errors=True)
    tmp = os.path.join(cache_dir, key + ".tmp")
    os.mkdir(tmp)
    r, built = build(tmp)
    if r.returncode != 0 or not os.path.exists(built):
        raise RuntimeError("dpkg-buildpackage failed:\n" + r.stdout[-3000:]
                           + r.stderr[-3000:])
    shutil.rmtree(os.path.join(tmp, NAME))
    os.rename(tmp, os.path.join(cache_dir, key))
    return deb
