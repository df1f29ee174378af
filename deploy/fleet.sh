#!/usr/bin/env bash
# Roll out one edgemon wheel, one model and per-device configs to many devices over ssh,
# and check the fleet afterwards. `deploy/fleet.sh --help` lists the commands and options;
# docs/deployment.md walks through a roll-out.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPOSITORY="$(dirname "$SCRIPT_DIR")"
readonly SCRIPT_DIR REPOSITORY
# Folder in the ssh user's home on each device that receives the files of one roll-out.
readonly STAGE=edgemon-rollout
readonly PLACEHOLDER=@DEVICE_ID@

usage() {
  cat <<'EOF'
Usage:
  deploy/fleet.sh deploy --hosts FILE --wheel FILE --model FILE --config FILE [OPTIONS]
  deploy/fleet.sh status --hosts FILE [--mqtt URL [--watch SECONDS]] [--dry-run]

deploy   copies the wheel, the model and each device's config to every host, runs
         deploy/install.sh there as root, and (re)starts the service
status   prints `systemctl is-active edgemon`, the edgemon version and the daemon's
         status line per host; with --mqtt it then runs `edgemon watch` for a while
         to show every device's online/offline status and states

  --hosts FILE      one device a line: SSH_DESTINATION [id=DEVICE_ID] [config=FILE];
                    '#' starts a comment. The device id defaults to the host name's
                    first label (pi@press-3.plant.lan -> press-3).
  --wheel FILE      edgemon wheel to install, e.g. dist/edgemon-0.1.0-cp311-cp311-linux_aarch64.whl
  --model FILE      model to install as /etc/edgemon/model.onnx on every device
  --config FILE     config template; @DEVICE_ID@ in it becomes each device's id.
                    A host's config=FILE replaces it for that host.
  --wheelhouse DIR  also copy DIR/*.whl and install dependencies only from them
                    (for devices without access to a package index)
  --no-start        install without enabling or restarting the service
  --jobs N          hosts to work on at the same time (default: 1)
  --mqtt URL        status: broker the devices publish to
  --watch SECONDS   status: how long `edgemon watch` runs (default: 10)
  --dry-run         print what would run on each host, change nothing
  -h, --help        show this help and exit

Environment:
  EDGEMON_SSH   command that runs a shell command on a host, called as
                $EDGEMON_SSH DESTINATION COMMAND (default: ssh -o BatchMode=yes)
  EDGEMON_SCP   command that copies files to a host, called as
                $EDGEMON_SCP FILE... DESTINATION:FOLDER/ (default: scp -q -o BatchMode=yes)
The ssh user needs root or password-less sudo on each device.
EOF
}

say() { printf 'fleet.sh: %s\n' "$*"; }
die() { printf 'fleet.sh: error: %s\n' "$*" >&2; exit 1; }
usage_error() { printf 'fleet.sh: error: %s\nTry deploy/fleet.sh --help.\n' "$*" >&2; exit 2; }

# --- options --------------------------------------------------------------------------

[ "$#" -gt 0 ] || usage_error "name a command: deploy or status"
case "$1" in
  deploy | status) command="$1"; shift ;;
  -h | --help) usage; exit 0 ;;
  *) usage_error "unknown command '$1': use deploy or status" ;;
esac

hosts_file=""
wheel=""
model=""
config_template=""
wheelhouse=""
start=true
jobs=1
mqtt_url=""
watch_seconds=10
dry_run=false

need_value() {
  if [ "$#" -lt 2 ] || [ -z "$2" ]; then
    usage_error "$1 needs a value"
  fi
}

while [ "$#" -gt 0 ]; do
  case "$1" in
    --hosts) need_value "$@"; hosts_file="$2"; shift 2 ;;
    --wheel) need_value "$@"; wheel="$2"; shift 2 ;;
    --model) need_value "$@"; model="$2"; shift 2 ;;
    --config) need_value "$@"; config_template="$2"; shift 2 ;;
    --wheelhouse) need_value "$@"; wheelhouse="$2"; shift 2 ;;
    --no-start) start=false; shift ;;
    --jobs) need_value "$@"; jobs="$2"; shift 2 ;;
    --mqtt) need_value "$@"; mqtt_url="$2"; shift 2 ;;
    --watch) need_value "$@"; watch_seconds="$2"; shift 2 ;;
    --dry-run) dry_run=true; shift ;;
    -h | --help) usage; exit 0 ;;
    --*=*) usage_error "write '${1%%=*} ${1#*=}' instead of '$1'" ;;
    *) usage_error "unknown argument '$1'" ;;
  esac
done

[ -n "$hosts_file" ] || usage_error "--hosts FILE is required"
[ -f "$hosts_file" ] || usage_error "hosts file not found: $hosts_file"
[[ "$jobs" =~ ^[1-9][0-9]*$ ]] || usage_error "--jobs must be a whole number >= 1, got '$jobs'"
[[ "$watch_seconds" =~ ^[1-9][0-9]*$ ]] || usage_error "--watch must be a whole number of seconds >= 1, got '$watch_seconds'"

if [ "$command" = deploy ]; then
  [ -n "$wheel" ] || usage_error "deploy needs --wheel FILE (build one with: python3 -m pip wheel --no-deps -w dist .)"
  [ -f "$wheel" ] || usage_error "wheel not found: $wheel"
  case "$(basename "$wheel")" in
    edgemon-*.whl) ;;
    *) usage_error "--wheel must be an edgemon wheel (edgemon-<version>-...whl), got $wheel" ;;
  esac
  [ -n "$model" ] || usage_error "deploy needs --model FILE"
  [ -f "$model" ] || usage_error "model file not found: $model"
  [ -n "$config_template" ] || usage_error "deploy needs --config FILE"
  [ -f "$config_template" ] || usage_error "config file not found: $config_template"
  if [ -n "$wheelhouse" ]; then
    [ -d "$wheelhouse" ] || usage_error "wheelhouse folder not found: $wheelhouse"
    compgen -G "$wheelhouse/*.whl" >/dev/null || usage_error "wheelhouse $wheelhouse holds no .whl files"
  fi
else
  if [ -n "$wheel$model$config_template$wheelhouse" ] || ! $start; then
    usage_error "status takes only --hosts, --mqtt, --watch and --dry-run"
  fi
fi

read -r -a ssh_command <<<"${EDGEMON_SSH:-ssh -o BatchMode=yes}"
read -r -a scp_command <<<"${EDGEMON_SCP:-scp -q -o BatchMode=yes}"
[ "${#ssh_command[@]}" -gt 0 ] || usage_error "EDGEMON_SSH is set but empty"
[ "${#scp_command[@]}" -gt 0 ] || usage_error "EDGEMON_SCP is set but empty"

# --- hosts file -----------------------------------------------------------------------

host_destinations=()
host_ids=()
host_configs=()

# Prints the device id that a destination such as pi@press-3.plant.lan implies, or nothing
# for an IP address, which names no device.
id_from_destination() {
  local name="${1#ssh://}"
  name="${name#*@}"
  name="${name%%:*}"
  if [[ "$name" =~ ^[0-9.]+$ ]] || [ -z "$name" ]; then
    return
  fi
  name="${name%%.*}"
  printf '%s' "$name" | tr '[:upper:]' '[:lower:]'
}

read_hosts() {
  local hosts_dir line number=0 destination field id config
  hosts_dir="$(cd "$(dirname "$hosts_file")" && pwd)"
  while IFS= read -r line || [ -n "$line" ]; do
    number=$((number + 1))
    line="${line%%#*}"
    read -r -a fields <<<"$line"
    [ "${#fields[@]}" -gt 0 ] || continue
    destination="${fields[0]}"
    id=""
    config=""
    for field in "${fields[@]:1}"; do
      case "$field" in
        id=?*) id="${field#id=}" ;;
        config=?*) config="${field#config=}" ;;
        *) die "$hosts_file:$number: unknown field '$field' (expected id=DEVICE_ID or config=FILE)" ;;
      esac
    done
    if [ -z "$id" ]; then
      id="$(id_from_destination "$destination")"
      [ -n "$id" ] || die "$hosts_file:$number: $destination names no device; add id=DEVICE_ID to the line"
    fi
    if ! [[ "$id" =~ ^[a-z0-9_-]{1,64}$ ]]; then
      die "$hosts_file:$number: device id '$id' is invalid: use 1-64 lowercase letters, digits, '-' or '_' (set it with id=DEVICE_ID)"
    fi
    local index
    for index in "${!host_ids[@]}"; do
      if [ "${host_ids[$index]}" = "$id" ]; then
        die "$hosts_file:$number: device id '$id' is already used by ${host_destinations[$index]}; every device needs its own id"
      fi
    done
    if [ -n "$config" ]; then
      case "$config" in
        /*) ;;
        *) config="$hosts_dir/$config" ;;
      esac
      [ -f "$config" ] || die "$hosts_file:$number: config file not found: $config"
    fi
    host_destinations+=("$destination")
    host_ids+=("$id")
    host_configs+=("$config")
  done <"$hosts_file"
  [ "${#host_destinations[@]}" -gt 0 ] || die "$hosts_file lists no hosts"
}

# --- running commands -----------------------------------------------------------------

# Prints the words as one shell command line, single-quoting the words that need it.
quote() {
  local out="" word
  for word in "$@"; do
    if [[ "$word" =~ ^[A-Za-z0-9_@%+=:,./-]+$ ]]; then
      out+="$word "
    else
      out+="'${word//\'/\'\\\'\'}' "
    fi
  done
  printf '%s' "${out% }"
}

# Runs a command here, or only prints it with --dry-run.
run() {
  if $dry_run; then
    printf 'would run: %s\n' "$(quote "$@")"
  else
    "$@"
  fi
}

remote() {
  local destination="$1"
  shift
  run "${ssh_command[@]}" "$destination" "$*"
}

copy() {
  local destination="$1" folder="$2"
  shift 2
  run "${scp_command[@]}" "$@" "$destination:$folder/"
}

# Runs an action for every host, prefixing each output line with the host's destination so
# that the output of parallel jobs stays readable. An action that succeeds leaves a file in
# $status_dir; set -e ends a failing one before it can.
for_each_host() {
  local action="$1" index destination
  for index in "${!host_destinations[@]}"; do
    destination="${host_destinations[$index]}"
    {
      "$action" "$index"
      touch "$status_dir/$index"
    } 2>&1 | sed -u "s|^|[$destination] |" &
    if [ "$jobs" -eq 1 ]; then
      wait
    else
      while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do
        wait -n || true
      done
    fi
  done
  wait
}

# Prints the destinations whose work failed; returns 1 if there were any.
report_failures() {
  local what="$1" index failed=()
  if $dry_run; then
    say "dry run of the $what for ${#host_destinations[@]} hosts finished; nothing was changed"
    return
  fi
  for index in "${!host_destinations[@]}"; do
    if [ ! -e "$status_dir/$index" ]; then
      failed+=("${host_destinations[$index]}")
    fi
  done
  if [ "${#failed[@]}" -gt 0 ]; then
    say "$what failed on ${#failed[@]} of ${#host_destinations[@]} hosts: ${failed[*]}"
    return 1
  fi
  say "$what succeeded on all ${#host_destinations[@]} hosts"
}

# --- deploy ---------------------------------------------------------------------------

render_config() {
  local index="$1" source="${host_configs[$1]:-$config_template}"
  local target="$work_dir/config-$index/edgemon.toml"
  mkdir -p "$(dirname "$target")"
  sed "s/$PLACEHOLDER/${host_ids[$index]}/g" "$source" >"$target"
  printf '%s' "$target"
}

check_configs() {
  local index shared=0
  for index in "${!host_configs[@]}"; do
    [ -n "${host_configs[$index]}" ] || shared=$((shared + 1))
  done
  if [ "$shared" -gt 1 ] && ! grep -q "$PLACEHOLDER" "$config_template"; then
    die "$config_template has no $PLACEHOLDER, so all $shared devices would publish under the same id; write id = \"$PLACEHOLDER\" under [device]"
  fi
}

deploy_host() {
  local index="$1"
  local destination="${host_destinations[$index]}" id="${host_ids[$index]}"
  local config
  config="$(render_config "$index")"
  say "device id $id, config from ${host_configs[$index]:-$config_template}"

  local install_args=(
    --source "$STAGE/$(basename "$wheel")"
    --model "$STAGE/$(basename "$model")"
    --config "$STAGE/edgemon.toml"
  )
  if [ -n "$wheelhouse" ]; then
    install_args+=(--wheelhouse "$STAGE/wheelhouse")
  fi
  if $start; then
    install_args+=(--enable)
  fi
  local install
  install="$(quote bash "$STAGE/deploy/install.sh" "${install_args[@]}")"

  remote "$destination" "rm -rf $STAGE && mkdir -p $STAGE/deploy $STAGE/systemd $STAGE/wheelhouse"
  copy "$destination" "$STAGE/deploy" "$SCRIPT_DIR/install.sh" "$SCRIPT_DIR/edgemon.toml"
  copy "$destination" "$STAGE/systemd" "$REPOSITORY/systemd/edgemon.service"
  copy "$destination" "$STAGE" "$wheel" "$model" "$config"
  if [ -n "$wheelhouse" ]; then
    copy "$destination" "$STAGE/wheelhouse" "$wheelhouse"/*.whl
  fi
  # sudo -n fails at once instead of waiting for a password nobody can type.
  remote "$destination" "if [ \"\$(id -u)\" -eq 0 ]; then $install; else sudo -n $install; fi && rm -rf $STAGE"
}

# --- status ---------------------------------------------------------------------------

# One line per host: active state, edgemon version and the daemon's STATUS= text,
# separated by '|'. `systemctl is-active` exits non-zero when inactive; its output counts.
# shellcheck disable=SC2016 # expanded by the shell on the device
readonly STATUS_COMMAND='printf "%s|%s|%s\n" "$(systemctl is-active edgemon 2>/dev/null)" "$(/opt/edgemon/venv/bin/edgemon --version 2>/dev/null || echo not-installed)" "$(systemctl show --property=StatusText --value edgemon 2>/dev/null)"'

status_host() {
  local index="$1" destination="${host_destinations[$1]}" reply
  if $dry_run; then
    remote "$destination" "$STATUS_COMMAND"
    return
  fi
  if ! reply="$(remote "$destination" "$STATUS_COMMAND")"; then
    say "${host_ids[$index]}: unreachable (ssh failed)"
    return 1
  fi
  local active version text
  IFS='|' read -r active version text <<<"$reply"
  say "${host_ids[$index]}: ${active:-unknown}, ${version:-unknown version}${text:+, $text}"
  [ "$active" = active ]
}

watch_fleet() {
  local edgemon="${EDGEMON:-edgemon}"
  if ! $dry_run && ! command -v "$edgemon" >/dev/null; then
    die "edgemon not found on PATH, so the MQTT check cannot run: activate a virtual environment with edgemon, or run: edgemon watch --mqtt $mqtt_url"
  fi
  say "status and states on $mqtt_url for $watch_seconds s (retained online/offline first):"
  # edgemon watch stops cleanly on SIGINT; --preserve-status keeps its exit status.
  run timeout --preserve-status --signal=INT "$watch_seconds" "$edgemon" watch --mqtt "$mqtt_url"
}

# --- main -----------------------------------------------------------------------------

read_hosts
work_dir="$(mktemp -d)"
trap 'rm -rf "$work_dir"' EXIT
status_dir="$work_dir/status"
mkdir -p "$status_dir"
if $dry_run; then
  say "dry run: nothing is copied or changed"
fi

if [ "$command" = deploy ]; then
  check_configs
  for_each_host deploy_host
  report_failures "deploy"
else
  result=0
  for_each_host status_host
  report_failures "status check" || result=1
  if [ -n "$mqtt_url" ]; then
    watch_fleet || result=1
  fi
  exit "$result"
fi
