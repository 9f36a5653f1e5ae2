#!/usr/bin/env bash
# Add (or with --uninstall remove) a Lumos Studio entry in the desktop's application menu.
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
apps="${XDG_DATA_HOME:-$HOME/.local/share}/applications"
entry="$apps/lumos-studio.desktop"
if [ "${1:-}" = "--uninstall" ]; then
    rm -f "$entry"
    echo "removed $entry"
    exit 0
fi
command -v python3 >/dev/null || { echo "Lumos Studio needs python3 (3.11 or newer)" >&2; exit 1; }
mkdir -p "$apps"
tmp="$(mktemp "$apps/.lumos-studio.XXXXXX")"
cat > "$tmp" <<DESKTOP
[Desktop Entry]
Type=Application
Name=Lumos Studio
Comment=Draft a video, hand it over to a stronger generator, export MP4
Exec=python3 "$repo/bootstrap.py" app
Path=$repo
Icon=$repo/resources/icons/app.svg
Terminal=false
Categories=AudioVideo;Video;Graphics;
DESKTOP
chmod 644 "$tmp"
mv "$tmp" "$entry"
echo "installed $entry"
