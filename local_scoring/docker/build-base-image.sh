#!/usr/bin/env bash
# Build a minimal Debian base image with python3 and python3-venv, without an image registry.
#
# `apt-get download` fetches python3, python3-venv, libstdc++6 (numpy's and scipy's wheels link
# it), libgomp1 (LightGBM links OpenMP), dash, coreutils and their dependencies into a temporary
# folder. `dpkg-deb` unpacks them into a root filesystem with a merged /usr, and `docker import`
# loads it. Maintainer scripts never run, so the few files they would create (/bin/sh,
# /etc/passwd, the loader cache) are written here.
#
# Usage: local_scoring/docker/build-base-image.sh [TAG]    (default tag: lab-python-base:bookworm)
# Needs: root (the unpacked files must keep their owners and modes), apt-get with current
# package lists (`apt-get update`), and a Docker engine. The image gets the host's Debian
# release, so run it on Debian 12 (bookworm) to get Python 3.11.
set -euo pipefail

TAG="${1:-lab-python-base:bookworm}"
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

mapfile -t PACKAGES < <(
    apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks \
        --no-replaces --no-enhances "${ROOTS[@]}" \
    | grep -E '^[a-z0-9]' | sort -u | grep -Ev "$EXCLUDED"
)
if [ "${#PACKAGES[@]}" -eq 0 ]; then
    echo "error: apt-cache found no packages for ${ROOTS[*]}; run 'apt-get update' first" >&2
    exit 1
fi
echo "downloading ${#PACKAGES[@]} Debian packages into $WORK/debs"
# apt-get download runs as the _apt user and writes into the current folder.
chmod 0755 "$WORK"
chmod 0777 "$WORK/debs"
(cd "$WORK/debs" && apt-get download -q "${PACKAGES[@]}" >/dev/null)

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
[ -e "$ROOTFS/usr/bin/python3" ] || ln -s python3.11 "$ROOTFS/usr/bin/python3"
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
    --message "python3 and python3-venv from Debian packages (${#PACKAGES[@]} packages)" \
    - "$TAG" >/dev/null
docker run --rm "$TAG" python3 -c 'import ssl, sqlite3, venv, ensurepip, sys; print("base image ok: Python", sys.version.split()[0])'
docker image ls "$TAG" --format '{{.Repository}}:{{.Tag}} {{.Size}}'
