#!/bin/sh
# Fails when an include points up the layers that README.md's "Layout"
# section draws: bot -> adapters -> core -> storage, all over net and base.
# Each line below is "folder: folders it must not include".
cd "$(dirname "$0")/.." || exit 2
bad=0
check() {
    dir=$1
    shift
    [ -d "$dir" ] || return 0
    for up in "$@"; do
        hits=$(grep -rn "#include \"$up/" "$dir" 2>/dev/null)
        if [ -n "$hits" ]; then
            echo "layers: $dir/ must not include $up/:"
            echo "$hits" | sed 's/^/  /'
            bad=1
        fi
    done
}
check adapters bot
check core bot adapters
check storage bot adapters core
check net bot adapters core storage
check base bot adapters core storage net
if [ "$bad" -ne 0 ]; then
    exit 1
fi
echo "layers: every include points down"
