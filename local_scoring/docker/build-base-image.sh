#!/usr/bin/env bash
# Build a minimal Debian base image with python3 and python3-venv, without an image registry.
#
# `apt-get download` fetches python3, python3-venv, libstdc++6 (numpy's and scipy's wheels link
# it), libgomp1 (LightGBM links OpenMP), dash, coreutils and their dependencies into a temporary
# folder. `dpkg-deb` unpacks them into a root filesystem with a merged /usr, and `docker import`
# loads it. Maintainer scripts never run, so the few files they would create (/bin/sh,
# /etc/passwd, the loader cache) are written here.
#
# Usage: local_scoring/docker/build-base-image.sh [--suite SUITE] [TAG]
#   without --suite  the host's Debian release and package lists; default tag
#                    lab-python-base:bookworm. Run it on Debian 12 (bookworm) to get Python 3.11.
#   --suite SUITE    another Debian release from http://deb.debian.org/debian, such as bullseye
#                    (Debian 11, Python 3.9); default tag lab-python-base:SUITE. Its package lists
#                    go into a private apt configuration in the temporary folder, so the host's
#                    sources, lists and cache stay unchanged.
# Needs: root (the unpacked files must keep their owners and modes), apt-get, a Docker engine,
# and either current package lists of the host (`apt-get update`) or, with --suite, access to
# deb.debian.org.
set -euo pipefail

SUITE=""
if [ "${1:-}" = "--suite" ]; then
    SUITE="${2:-}"
    [ -n "$SUITE" ] || { echo "error: --suite needs a Debian release name, such as bullseye" >&2; exit 2; }
    shift 2
fi
TAG="${1:-lab-python-base:${SUITE:-bookworm}}"
ROOTS=(python3 python3-venv libstdc++6 libgomp1 dash coreutils)
# Packages that the dependency closure pulls in through alternatives or maintainer scripts but
# that a Python service never runs (perl alone is about 50 MB).
EXCLUDED='^(perl|perl-base|perl-modules-.*|libperl.*|debconf|cdebconf|libdebian-installer.*|libnewt.*|libslang.*|libtextwrap.*|dpkg|install-info|tar|mailcap|mime-support|debianutils|libgdbm-compat.*|libdb5\.3)$'

for tool in apt-get apt-cache dpkg-deb docker; do
    command -v "$tool" >/dev/null || { echo "error: $tool not found; this script needs a Debian host with Docker" >&2; exit 1; }
done
docker info >/dev/null 2>&1 || { echo "error: no Docker engine responds (docker info failed); start it and retry" >&2; exit 1; }

WORK="$(mktemp -d "${TMPDIR:-/tmp}/lab-base-image.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/debs" "$WORK/rootfs"
# apt-get download runs as the _apt user and writes into the current folder.
chmod 0755 "$WORK"
chmod 0777 "$WORK/debs"

# Options for every apt command. With --suite they point apt at a private configuration: its own
# sources, lists, cache and an empty dpkg status, so the host's sources, pinning and installed
# packages take no part. Command-line options override /etc/apt/apt.conf.d, which apt still reads
# (a proxy set there still applies).
APT_OPTIONS=()
if [ -n "$SUITE" ]; then
    APT_DIR="$WORK/apt"
    mkdir -p "$APT_DIR"/{sources.list.d,preferences.d,lists/partial,cache/archives/partial}
    : >"$APT_DIR/status"
    keyring=/usr/share/keyrings/debian-archive-keyring.gpg
    [ -r "$keyring" ] || { echo "error: $keyring not found; install debian-archive-keyring" >&2; exit 1; }
    cat >"$APT_DIR/sources.list" <<SOURCES
deb [signed-by=$keyring] http://deb.debian.org/debian $SUITE main
deb [signed-by=$keyring] http://deb.debian.org/debian $SUITE-updates main
deb [signed-by=$keyring] http://deb.debian.org/debian-security $SUITE-security main
SOURCES
    APT_OPTIONS=(
        -o "Dir::Etc::SourceList=$APT_DIR/sources.list"
        -o "Dir::Etc::SourceParts=$APT_DIR/sources.list.d"
        -o "Dir::Etc::Preferences=$APT_DIR/preferences"
        -o "Dir::Etc::PreferencesParts=$APT_DIR/preferences.d"
        -o "Dir::State::Lists=$APT_DIR/lists"
        -o "Dir::State::status=$APT_DIR/status"
        -o "Dir::Cache=$APT_DIR/cache"
        -o "Dir::Cache::pkgcache="
        -o "Dir::Cache::srcpkgcache="
        -o "Acquire::Languages=none"
    )
    echo "reading the package lists of Debian $SUITE into $APT_DIR"
    apt-get "${APT_OPTIONS[@]}" update -q >"$WORK/apt-update.log" 2>&1 || {
        cat "$WORK/apt-update.log" >&2
        echo "error: apt-get update for Debian $SUITE failed; http://deb.debian.org must be reachable" >&2
        exit 1
    }
fi

mapfile -t PACKAGES < <(
    apt-cache "${APT_OPTIONS[@]}" depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks \
        --no-replaces --no-enhances "${ROOTS[@]}" \
    | grep -E '^[a-z0-9]' | sort -u | grep -Ev "$EXCLUDED"
)
if [ "${#PACKAGES[@]}" -eq 0 ]; then
    echo "error: apt-cache found no packages for ${ROOTS[*]}; run 'apt-get update' first" >&2
    exit 1
fi
echo "downloading ${#PACKAGES[@]} Debian packages into $WORK/debs"
(cd "$WORK/debs" && apt-get "${APT_OPTIONS[@]}" download -q "${PACKAGES[@]}" >/dev/null)

ROOTFS="$WORK/rootfs"
# Merged /usr, as in Debian 12: /bin, /sbin and /lib* are links into /usr, so files that
# packages ship under /bin and /usr/bin land in one folder.
mkdir -p "$ROOTFS"/usr/{bin,sbin,lib,lib64} "$ROOTFS"/{etc,tmp,root,home,var/tmp,dev,proc,sys,run}
for dir in bin sbin lib lib64; do
    ln -s "usr/$dir" "$ROOTFS/$dir"
done
for deb in "$WORK"/debs/*.deb; do
    dpkg-deb --fsys-tarfile "$deb" | tar -x --keep-directory-symlink -C "$ROOTFS"
done

# Files that maintainer scripts would have created.
[ -e "$ROOTFS/bin/sh" ] || ln -s dash "$ROOTFS/usr/bin/sh"
if [ ! -e "$ROOTFS/usr/bin/python3" ]; then
    interpreter="$(cd "$ROOTFS/usr/bin" && ls python3.[0-9]* | grep -E '^python3\.[0-9]+$' | sort -V | tail -n 1)"
    ln -s "$interpreter" "$ROOTFS/usr/bin/python3"
fi
[ -e "$ROOTFS/usr/bin/python" ] || ln -s python3 "$ROOTFS/usr/bin/python"
chmod 1777 "$ROOTFS/tmp" "$ROOTFS/var/tmp"
chmod 0700 "$ROOTFS/root"
cat >"$ROOTFS/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
PASSWD
cat >"$ROOTFS/etc/group" <<'GROUP'
root:x:0:
nogroup:x:65534:
GROUP
if command -v ldconfig >/dev/null; then
    ldconfig -r "$ROOTFS"
fi

tar -C "$ROOTFS" -c . | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["python3"]' \
    --message "python3 and python3-venv from Debian ${SUITE:+$SUITE }packages (${#PACKAGES[@]} packages)" \
    - "$TAG" >/dev/null
docker run --rm "$TAG" python3 -c 'import ssl, sqlite3, venv, ensurepip, sys; print("base image ok: Python", sys.version.split()[0])'
docker image ls "$TAG" --format '{{.Repository}}:{{.Tag}} {{.Size}}'
