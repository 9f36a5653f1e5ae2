#!/usr/bin/env bash
# A scripted walkthrough of Lumos Studio in a real X session (Xvfb + openbox), driven by xdotool like a user:
# type an instruction, draft, draft a different one, slide the hand-off to refine, compare two takes, export an MP4
# (read back with ffprobe). Screenshots of the window: docs/screenshots/walkthrough-<W>x<H>-<n>-<step>.png.
#
#   scripts/walkthrough.sh [WxH ...]          default: 1024x700 1600x1000 (the whole walkthrough once per size)
#
# Needs the venv (`python3 bootstrap.py test` or `python3 bootstrap.py app` creates it). As root it installs the
# missing Debian packages with apt-get (else it prints the apt-get line and stops). Every user folder (HOME,
# LUMOS_STUDIO_HOME, XDG_*) is a temporary folder removed at exit: the real user's settings and projects are never
# read or written. The helper scripts/walkthrough_probe.py starts the unchanged app and reports where its widgets are
# (so clicks land on them at any size); every key press and click comes from xdotool.
# Environment: WALKTHROUGH_OUT=folder for the screenshots (default docs/screenshots), WALKTHROUGH_KEEP=1 keeps the
# temporary folder (app logs, project, exported MP4) and prints where it is.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PY=$ROOT/.venv/bin/python
PROBE_PY=$ROOT/scripts/walkthrough_probe.py
OUT=${WALKTHROUGH_OUT:-$ROOT/docs/screenshots}
SIZES=("$@")
[ ${#SIZES[@]} -gt 0 ] || SIZES=(1024x700 1600x1000)
INSTRUCTION_1="a big green plain square at the bottom left moves up. gray striped background."
INSTRUCTION_2="a small red dotted circle at the top right moves left. a big blue striped triangle at the center grows."
INSTRUCTION_2+=" sand checked background."
REFINE_AT=40  # hand-off % the slider is dragged to

T0=$SECONDS
TMP=""
XVFB_PID="" WM_PID="" APP_PID="" SIZE="" LOG="" PROBE=""

say() { printf '[walkthrough %4ds] %s\n' $((SECONDS - T0)) "$*"; }

cleanup() {
    local pid
    for pid in "$APP_PID" "$WM_PID" "$XVFB_PID"; do
        if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; fi
    done
    for pid in "$APP_PID" "$WM_PID" "$XVFB_PID"; do
        if [ -n "$pid" ]; then wait "$pid" 2>/dev/null || true; fi
    done
    if [ -n "$TMP" ]; then
        if [ "${WALKTHROUGH_KEEP:-0}" = 1 ]; then say "kept $TMP"; else rm -rf "$TMP"; fi
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

die() {
    echo "walkthrough: FAILED${SIZE:+ at $SIZE}: $*" >&2
    if [ -n "$TMP" ] && [ -n "$LOG" ] && [ -f "$LOG" ]; then
        local keep
        keep=$(mktemp -d "${TMPDIR:-/tmp}/lumos-walkthrough-failed.XXXXXX")
        cp "$LOG" "$keep/app.log"
        [ -f "$PROBE" ] && cp "$PROBE" "$keep/probe.json"
        import -window root "$keep/screen.png" 2>/dev/null || true
        echo "walkthrough: the app's log, its last probe and a screenshot are in $keep; the log ends with:" >&2
        tail -n 25 "$LOG" >&2
    fi
    exit 1
}

# ---------------------------------------------------------------------------------------------- what it needs
ensure_packages() {
    local qt missing=()
    qt=$(python3 - "$ROOT/bootstrap.py" <<'EOF'
import ast, sys
tree = ast.parse(open(sys.argv[1]).read())
for node in tree.body:
    if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "QT_DEBIAN_PACKAGES" for t in node.targets):
        print(" ".join(ast.literal_eval(node.value)))
EOF
)
    [ -n "$qt" ] || die "cannot read QT_DEBIAN_PACKAGES from bootstrap.py"
    local p
    for p in xvfb xauth openbox xdotool imagemagick ffmpeg $qt; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return
    if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
        die "missing Debian packages; install them with: sudo apt-get install -y --no-install-recommends ${missing[*]}"
    fi
    say "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null || die "apt-get update failed"
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || die "apt-get install failed"
}

# ------------------------------------------------------------------------------------------------- X session
start_x() {
    local w=0 h=0 s n cookie
    for s in "${SIZES[@]}"; do
        [[ $s =~ ^([0-9]+)x([0-9]+)$ ]] || die "a size is WIDTHxHEIGHT, e.g. 1024x700 (got $s)"
        (( BASH_REMATCH[1] > w )) && w=${BASH_REMATCH[1]}
        (( BASH_REMATCH[2] > h )) && h=${BASH_REMATCH[2]}
    done
    for n in $(seq 90 199); do
        [ -e "/tmp/.X$n-lock" ] || [ -e "/tmp/.X11-unix/X$n" ] || break
    done
    export DISPLAY=:$n XAUTHORITY=$TMP/Xauthority
    cookie=$(python3 -c 'import secrets; print(secrets.token_hex(16))')
    touch "$XAUTHORITY"
    xauth -q -f "$XAUTHORITY" add "$DISPLAY" . "$cookie"
    Xvfb "$DISPLAY" -screen 0 "$((w + 80))x$((h + 80))x24" -nolisten tcp -auth "$XAUTHORITY" >"$TMP/xvfb.log" 2>&1 &
    XVFB_PID=$!
    for _ in $(seq 50); do xdotool getdisplaygeometry >/dev/null 2>&1 && break; sleep 0.2; done
    xdotool getdisplaygeometry >/dev/null 2>&1 || { cat "$TMP/xvfb.log" >&2; die "Xvfb did not start on $DISPLAY"; }
    openbox --sm-disable >"$TMP/openbox.log" 2>&1 &
    WM_PID=$!
    sleep 1
    kill -0 "$WM_PID" 2>/dev/null || { cat "$TMP/openbox.log" >&2; die "openbox did not start"; }
    say "X session $DISPLAY ($(xdotool getdisplaygeometry)) with openbox"
}

# ------------------------------------------------------------------------------------------------ the probe
probe() { python3 "$PROBE_PY" get "$PROBE" "$@"; }  # probe EXPR [DEFAULT]

# wait_for SECONDS WHAT PYTHON-CONDITION-ON-d
wait_for() {
    local limit=$1 what=$2 cond=$3 end=$((SECONDS + $1))
    while [ "$(probe "bool($cond)" False)" != true ]; do
        kill -0 "$APP_PID" 2>/dev/null || die "the app quit while waiting for $what"
        [ $SECONDS -lt $end ] || die "no $what after ${limit}s"
        sleep 0.3
    done
}

project_takes() {  # takes saved in the project file on disk (read independently of the app)
    python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1])).get("takes", [])))' \
        "$HOME_DIR/lumos/data/projects/Untitled/project.json" 2>/dev/null || echo 0
}

wait_for_takes() {  # wait_for_takes N WHAT: N takes in the strip, none running, and N saved on disk
    local n=$1 what=$2 end=$((SECONDS + 300))
    wait_for 300 "$what in the takes strip" "len(d['takes']) >= $n and d['jobs_active'] == 0"
    while [ "$(project_takes)" -lt "$n" ]; do
        [ $SECONDS -lt $end ] || die "$what is in the strip but the project file on disk has $(project_takes) takes"
        sleep 0.3
    done
}

shot() {  # shot N-STEP: the window (and any dialog over it) as docs/screenshots/walkthrough-<size>-N-STEP.png
    local r file=$OUT/walkthrough-$SIZE-$1.png
    sleep 0.4  # let the last repaint reach the screen
    r=$(probe "'%(w)dx%(h)d+%(x)d+%(y)d' % d['window']")
    import -window root -crop "$r" +repage -strip -define png:compression-level=9 "$file" \
        || die "screenshot $file failed"
    say "  screenshot $(basename "$file")"
}

click_at() { xdotool mousemove --sync "$1" "$2" click 1; }

type_instruction() {
    local text=$1 x y
    x=$(probe "d['prompt']['cx']") || die "the instruction box is not on screen"
    y=$(probe "d['prompt']['cy']")
    click_at "$x" "$y"
    xdotool key ctrl+a
    xdotool type --delay 15 "$text"
    export WALKTHROUGH_TYPED=$text  # compared through the environment: no quoting of the text into Python
    wait_for 20 "typed instruction in the instruction box" "d['prompt_text'] == env['WALKTHROUGH_TYPED']"
}

# --------------------------------------------------------------------------------------------- one walkthrough
walkthrough() {
    SIZE=$1
    local w=${SIZE%x*} h=${SIZE#*x} t0=$SECONDS wid="" x y gx gw hw tx i
    HOME_DIR=$TMP/$SIZE
    LOG=$TMP/$SIZE/app.log
    PROBE=$TMP/$SIZE/probe.json
    mkdir -p "$HOME_DIR"/{lumos,config,data,cache,runtime}
    chmod 700 "$HOME_DIR/runtime"
    say "== $SIZE: starting Lumos Studio (user folders in $HOME_DIR)"
    (cd "$ROOT" && exec env HOME="$HOME_DIR" LUMOS_STUDIO_HOME="$HOME_DIR/lumos" XDG_CONFIG_HOME="$HOME_DIR/config" \
        XDG_DATA_HOME="$HOME_DIR/data" XDG_CACHE_HOME="$HOME_DIR/cache" XDG_RUNTIME_DIR="$HOME_DIR/runtime" \
        QT_QPA_PLATFORM=xcb HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 \
        "$PY" "$PROBE_PY" launch "$PROBE") >"$LOG" 2>&1 &
    APP_PID=$!
    for _ in $(seq 300); do
        kill -0 "$APP_PID" 2>/dev/null || die "the app did not start (it exited)"
        wid=$(xdotool search --onlyvisible --pid "$APP_PID" --name "Lumos Studio" 2>/dev/null | head -n 1) || true
        [ -n "$wid" ] && [ -f "$PROBE" ] && break
        sleep 0.2
    done
    [ -n "$wid" ] || die "the app's window did not appear within 60 s"
    xdotool windowsize --sync "$wid" "$w" "$h" 2>/dev/null || xdotool windowsize "$wid" "$w" "$h"
    xdotool windowmove "$wid" 0 0
    xdotool windowactivate --sync "$wid" 2>/dev/null || xdotool windowfocus "$wid"
    wait_for 10 "window of $SIZE" "d['window'] and (d['window']['w'], d['window']['h']) == ($w, $h)"
    say "window $(probe "d['title']") is ${SIZE}; waiting for the models"
    wait_for 180 "loaded models" "d['models_ready']"
    say "models loaded ($(probe "d['model_label']"))"
    shot 0-start

    say "type an instruction"
    type_instruction "$INSTRUCTION_1"
    shot 1-typed

    say "draft (Ctrl+Enter)"
    xdotool key ctrl+Return
    wait_for_takes 1 "first draft"
    sleep 1.5  # the take plays in the player; the plan panel fills in
    shot 2-draft

    say "a different instruction, draft again"
    type_instruction "$INSTRUCTION_2"
    xdotool key ctrl+Return
    wait_for_takes 2 "second draft"
    sleep 1.5
    shot 3-second-draft

    say "drag the hand-off slider to about $REFINE_AT %"
    wait_for 20 "enabled hand-off slider" "d['slider'] and d['slider']['enabled'] and d['slider']['handle']"
    x=$(probe "d['slider']['handle']['cx']")
    y=$(probe "d['slider']['handle']['cy']")
    gx=$(probe "d['slider']['groove']['x']")
    gw=$(probe "d['slider']['groove']['w']")
    hw=$(probe "d['slider']['handle_w']")
    tx=$((gx + hw / 2 + (gw - hw) * REFINE_AT / 100))
    xdotool mousemove --sync "$x" "$y" mousedown 1
    for i in 1 2 3 4 5 6 7 8; do
        xdotool mousemove --sync $((x + (tx - x) * i / 8)) "$y"
        sleep 0.05
    done
    xdotool mouseup 1
    wait_for 5 "slider near $REFINE_AT %" "abs(d['slider']['value'] - $REFINE_AT) <= 3"
    say "slider at $(probe "d['slider']['value']") %: waiting for the refine"
    wait_for_takes 3 "refine"
    [ "$(probe "sum(not t['draft'] for t in d['takes'])")" -ge 1 ] || die "the third take is not a refine"
    sleep 1.5
    shot 4-refine

    say "select the refine and its draft in the takes strip (click, Ctrl+click), compare (Ctrl+K)"
    local refine base base_id
    refine=$(probe "[t for t in d['takes'] if not t['draft']][-1]['rect']")
    base_id=$(probe "[t for t in d['takes'] if not t['draft']][-1]['base_id']")
    base=$(probe "[t['rect'] for t in d['takes'] if t['id'] == '$base_id'][0]" null)
    [ "$refine" != null ] || die "the refine's thumbnail is not visible in the takes strip"
    [ "$base" != null ] || base=$(probe "[t for t in d['takes'] if t['draft']][-1]['rect']")
    [ "$base" != null ] || die "no draft thumbnail visible in the takes strip"
    click_at "$(probe "${refine}['cx']")" "$(probe "${refine}['cy']")"
    xdotool keydown ctrl
    click_at "$(probe "${base}['cx']")" "$(probe "${base}['cy']")"
    xdotool keyup ctrl
    wait_for 5 "two selected takes" "sum(t['selected'] for t in d['takes']) == 2"
    xdotool key ctrl+k
    wait_for 20 "compare view" "d['compare_open']"
    sleep 2
    shot 5-compare
    xdotool key Escape
    wait_for 5 "player after Escape" "not d['compare_open']"

    say "export (Ctrl+E, Return)"
    touch "$TMP/$SIZE/before-export"
    xdotool key ctrl+e
    wait_for 10 "export dialog" "d['modal'] and d['modal']['title'] == 'Export take'"
    shot 6-export
    xdotool key Return
    wait_for 10 "export dialog to close" "not d['modal']"
    wait_for 60 "'Exported' message" "any(w in (d['banner'] or '') for w in ('Exported', 'failed'))"
    [[ "$(probe "d['banner']")" != *failed* ]] || die "export: $(probe "d['banner']")"
    shot 7-exported
    local mp4 info frames
    # wherever the dialog proposed it (inside the temporary HOME / LUMOS_STUDIO_HOME), not a take of the project
    mp4=$(find "$HOME_DIR" -name '*.mp4' -size +0 -newer "$TMP/$SIZE/before-export" -not -path '*/takes/*' | head -n 1)
    [ -n "$mp4" ] || die "no MP4 was exported under $HOME_DIR"
    info=$(ffprobe -v error -count_frames -select_streams v:0 \
        -show_entries stream=codec_name,width,height,nb_read_frames -of csv=p=0 "$mp4") \
        || die "ffprobe cannot read the exported $mp4"
    frames=${info##*,}
    if ! [[ $frames =~ ^[0-9]+$ ]] || [ "$frames" -eq 0 ]; then die "ffprobe finds no frames in $mp4 ($info)"; fi
    say "exported $(basename "$mp4") ($(stat -c %s "$mp4") bytes): ffprobe reads codec,width,height,frames = $info"

    xdotool key ctrl+q
    for _ in $(seq 50); do kill -0 "$APP_PID" 2>/dev/null || break; sleep 0.2; done
    if kill -0 "$APP_PID" 2>/dev/null; then
        say "the app did not quit on Ctrl+Q within 10 s; killing it"
        kill "$APP_PID"
    fi
    wait "$APP_PID" 2>/dev/null || true
    APP_PID=""
    if grep -q Traceback "$LOG"; then
        say "the app's log has a traceback:"; grep -A12 Traceback "$LOG" | head -40
    fi
    say "== $SIZE done in $((SECONDS - t0)) s"
    SIZE=""
}

[ -x "$PY" ] || die "no venv at $ROOT/.venv: run 'python3 bootstrap.py test' (or 'app') once first"
"$PY" -c "import PySide6, torch" 2>/dev/null || die "the venv lacks PySide6 or torch: run 'python3 bootstrap.py test'"
ensure_packages
TMP=$(mktemp -d "${TMPDIR:-/tmp}/lumos-walkthrough.XXXXXX")
mkdir -p "$OUT"
start_x
for s in "${SIZES[@]}"; do walkthrough "$s"; done
say "all done: screenshots in $OUT"
