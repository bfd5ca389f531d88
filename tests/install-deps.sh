#!/bin/sh
# Install the Debian packages listed in tests/deps.txt that are missing.
# Run as root (CI is); otherwise it lists what is missing and fails.
set -eu
here=$(dirname "$0")
missing=
for pkg in $(sed -e 's/#.*//' "$here/deps.txt"); do
	dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' ||
		missing="$missing $pkg"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
	echo "install-deps: missing Debian packages:$missing (run as root, or apt-get install them)" >&2
	exit 1
fi
echo "install-deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
