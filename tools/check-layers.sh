#!/bin/sh
# Fails when an include points up the layers that README.md's "Layout"
# section draws (bot -> adapters -> core -> storage, all over net and base),
# or when a source file outgrows one noun.
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
# One noun per file: no source file over 1,000 lines, and the generation
# engine's files (split by noun) none over 800.
for f in $(find base net core storage adapters bot tests bench -name '*.[ch]' 2>/dev/null); do
    n=$(wc -l <"$f")
    limit=1000
    case "$f" in core/generate*.c) limit=800 ;; esac
    if [ "$n" -gt "$limit" ]; then
        echo "layers: $f has $n lines (at most $limit: split it by noun)"
        bad=1
    fi
done
if [ "$bad" -ne 0 ]; then
    exit 1
fi
echo "layers: every include points down, and every file is under its size"
