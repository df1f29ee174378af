#!/usr/bin/env bash
# Install edgemon as a systemd service on Debian 12 or Raspberry Pi OS (bookworm).
#
# Creates the system user edgemon, a virtual environment in /opt/edgemon/venv,
# the configuration folder /etc/edgemon and the unit /etc/systemd/system/edgemon.service.
# Running it again updates edgemon and the unit and keeps the configuration.
# `deploy/install.sh --help` lists the options; docs/deployment.md explains each step.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPOSITORY="$(dirname "$SCRIPT_DIR")"
readonly SCRIPT_DIR REPOSITORY
readonly UNIT_SOURCE="$REPOSITORY/systemd/edgemon.service"
readonly EXAMPLE_CONFIG="$SCRIPT_DIR/edgemon.toml"
readonly SERVICE_USER=edgemon
# Groups that own the SPI, I2C and GPIO device nodes on Raspberry Pi OS.
readonly DEVICE_GROUPS=(spi i2c gpio)

usage() {
  cat <<'EOF'
Usage: deploy/install.sh [OPTIONS]

Install or update edgemon as the systemd service edgemon.service (run as root).

  --source PATH       folder of an edgemon source tree, or an edgemon wheel (.whl)
                      (default: the repository this script is in)
  --model FILE        install FILE as /etc/edgemon/model.onnx
  --config FILE       install FILE as /etc/edgemon/edgemon.toml, keeping a different
                      existing file as edgemon.toml.bak-<time>; without this option the
                      example config is installed only where none exists yet
  --enable            enable the service and (re)start it; needs every model the
                      config names, and a config that passes `edgemon run --check`
  --extras LIST       comma-separated extras to install, e.g. pi ("" for none)
                      (default: pi on ARM, none elsewhere)
  --python PYTHON     interpreter for the virtual environment, Python >= 3.11
                      (default: python3)
  --wheelhouse DIR    install dependencies from the wheels in DIR only, without an index
  --root DIR          stage every file under DIR instead of /, for tests; skips the
                      user, ownership and systemctl steps. The virtual environment
                      works only where it was created, in DIR/opt/edgemon/venv
  --uninstall         stop and disable the service, remove the unit and the virtual
                      environment; keeps /etc/edgemon and /var/lib/edgemon
  --purge             with --uninstall: also remove /etc/edgemon, /var/lib/edgemon
                      (states not yet delivered to the broker) and the user edgemon
  -h, --help          show this help and exit
EOF
}

say() { printf 'install.sh: %s\n' "$*"; }
warn() { printf 'install.sh: warning: %s\n' "$*" >&2; }
die() { printf 'install.sh: error: %s\n' "$*" >&2; exit 1; }
usage_error() { printf 'install.sh: error: %s\nTry deploy/install.sh --help.\n' "$*" >&2; exit 2; }

# --- options --------------------------------------------------------------------------

readonly ORIGINAL_ARGS=("$@")
source_path="$REPOSITORY"
model=""
config=""
enable=false
extras=default
python=python3
wheelhouse=""
root=""
uninstall=false
purge=false

need_value() {
  if [ "$#" -lt 2 ] || [ -z "$2" ]; then
    usage_error "$1 needs a value"
  fi
}

while [ "$#" -gt 0 ]; do
  case "$1" in
    --source) need_value "$@"; source_path="$2"; shift 2 ;;
    --model) need_value "$@"; model="$2"; shift 2 ;;
    --config) need_value "$@"; config="$2"; shift 2 ;;
    --enable) enable=true; shift ;;
    --extras) [ "$#" -ge 2 ] || usage_error "--extras needs a value (\"\" for none)"; extras="$2"; shift 2 ;;
    --python) need_value "$@"; python="$2"; shift 2 ;;
    --wheelhouse) need_value "$@"; wheelhouse="$2"; shift 2 ;;
    --root) need_value "$@"; root="$2"; shift 2 ;;
    --uninstall) uninstall=true; shift ;;
    --purge) purge=true; shift ;;
    -h | --help) usage; exit 0 ;;
    --*=*) usage_error "write '${1%%=*} ${1#*=}' instead of '$1'" ;;
    *) usage_error "unknown argument '$1'" ;;
  esac
done

if $purge && ! $uninstall; then
  usage_error "--purge only goes with --uninstall"
fi
if $uninstall && { [ -n "$model" ] || [ -n "$config" ] || $enable; }; then
  usage_error "--uninstall cannot be combined with --model, --config or --enable"
fi
if [ -n "$model" ] && [ ! -f "$model" ]; then
  usage_error "model file not found: $model"
fi
if [ -n "$config" ] && [ ! -f "$config" ]; then
  usage_error "config file not found: $config"
fi
if [ -n "$wheelhouse" ] && [ ! -d "$wheelhouse" ]; then
  usage_error "wheelhouse folder not found: $wheelhouse"
fi
if [ -n "$extras" ] && [ "$extras" != default ] && ! [[ "$extras" =~ ^[a-z0-9_-]+(,[a-z0-9_-]+)*$ ]]; then
  usage_error "--extras must be comma-separated extra names such as 'pi', got '$extras'"
fi

if [ -d "$source_path" ]; then
  if ! grep -qs '^name = "edgemon"' "$source_path/pyproject.toml"; then
    usage_error "--source $source_path is not an edgemon source tree (no pyproject.toml naming edgemon)"
  fi
elif [ -f "$source_path" ]; then
  case "$(basename "$source_path")" in
    edgemon-*.whl) ;;
    *) usage_error "--source must be a folder or an edgemon wheel (edgemon-<version>-...whl), got $source_path" ;;
  esac
else
  usage_error "--source not found: $source_path"
fi

# Every path may be relative to the caller's folder; the steps below change no folder,
# but absolute paths keep the messages unambiguous.
absolute() { printf '%s/%s' "$(cd "$(dirname "$1")" && pwd)" "$(basename "$1")"; }
source_path="$(absolute "$source_path")"
[ -z "$model" ] || model="$(absolute "$model")"
[ -z "$config" ] || config="$(absolute "$config")"
[ -z "$wheelhouse" ] || wheelhouse="$(absolute "$wheelhouse")"

if [ -n "$root" ]; then
  mkdir -p "$root" || die "cannot create the --root folder $root"
  root="$(cd "$root" && pwd)"
  [ "$root" != / ] || usage_error "--root / installs into the running system: leave --root out instead"
fi

readonly VENV="$root/opt/edgemon/venv"
readonly ETC="$root/etc/edgemon"
readonly STATE="$root/var/lib/edgemon"
readonly UNIT="$root/etc/systemd/system/edgemon.service"
readonly UNIT_NAME=edgemon.service

# Installed files stay readable for the service user whatever umask root has.
umask 0022

# --- checks ---------------------------------------------------------------------------

check_system() {
  if [ -n "$root" ]; then
    say "--root $root: staging files only; skipping the user edgemon, file ownership and systemctl"
    return
  fi
  if [ "$(id -u)" -ne 0 ]; then
    die "must run as root to create the user edgemon and install the unit: sudo $0 ${ORIGINAL_ARGS[*]}"
  fi
  if ! command -v systemctl >/dev/null || [ ! -d /run/systemd/system ]; then
    die "systemd is not running on this machine (no /run/systemd/system), so edgemon cannot run as a service here; use --root DIR to stage the files without systemd"
  fi
}

check_python() {
  command -v "$python" >/dev/null || die "Python interpreter '$python' not found; install it (sudo apt-get install -y python3) or name one with --python"
  if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    die "edgemon needs Python >= 3.11, but $python is $("$python" -V 2>&1); name a newer one with --python"
  fi
  if ! "$python" -c 'import venv, ensurepip' 2>/dev/null; then
    die "$python cannot create virtual environments (no venv or ensurepip module); install python3-venv: sudo apt-get install -y python3-venv"
  fi
}

# --- steps ----------------------------------------------------------------------------

create_user() {
  if [ -n "$root" ]; then
    return
  fi
  if ! getent group "$SERVICE_USER" >/dev/null; then
    groupadd --system "$SERVICE_USER"
    say "created system group $SERVICE_USER"
  fi
  if ! getent passwd "$SERVICE_USER" >/dev/null; then
    useradd --system --gid "$SERVICE_USER" --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin --comment "edgemon condition monitor" "$SERVICE_USER"
    say "created system user $SERVICE_USER (no login shell, no home)"
  fi
  local group
  for group in "${DEVICE_GROUPS[@]}"; do
    if ! getent group "$group" >/dev/null; then
      continue
    fi
    if id -nG "$SERVICE_USER" | tr ' ' '\n' | grep -qx "$group"; then
      continue
    fi
    usermod --append --groups "$group" "$SERVICE_USER"
    say "added $SERVICE_USER to the group $group (access to its device nodes)"
  done
}

create_venv() {
  if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c 'import sys' 2>/dev/null; then
    say "using the virtual environment $VENV"
    return
  fi
  if [ -e "$VENV" ]; then
    warn "$VENV does not work (its Python is missing or broken); creating it again"
    rm -rf "$VENV"
  fi
  check_python
  mkdir -p "$(dirname "$VENV")"
  "$python" -m venv "$VENV" || die "could not create the virtual environment $VENV with $python"
  say "created the virtual environment $VENV ($("$VENV/bin/python" -V 2>&1))"
}

# Builds a wheel from a source folder in a scratch copy, so that the build leaves no
# root-owned build/ or *.egg-info folders in the caller's tree. Prints the wheel's path.
build_wheel() {
  local scratch="$1"
  mkdir -p "$scratch/src" "$scratch/dist"
  local item
  for item in pyproject.toml setup.cfg setup.py MANIFEST.in README.md LICENSE edgemon simulators; do
    if [ -e "$source_path/$item" ]; then
      cp -R "$source_path/$item" "$scratch/src/"
    fi
  done
  find "$scratch/src" -name __pycache__ -type d -prune -exec rm -rf {} +
  say "building a wheel from $source_path" >&2
  "$VENV/bin/python" -m pip wheel --quiet --disable-pip-version-check --no-deps \
    --wheel-dir "$scratch/dist" "${pip_index[@]}" "$scratch/src" >&2 ||
    die "could not build a wheel from $source_path (see pip's message above)"
  local wheels=("$scratch"/dist/edgemon-*.whl)
  [ -f "${wheels[0]}" ] || die "pip built no edgemon wheel from $source_path"
  printf '%s\n' "${wheels[0]}"
}

install_package() {
  local scratch="$1" wheel
  if [ -d "$source_path" ]; then
    wheel="$(build_wheel "$scratch")"
  else
    wheel="$source_path"
  fi

  local requirement="$wheel"
  if [ -n "$extras" ]; then
    requirement="${wheel}[$extras]"
  fi
  say "installing $(basename "$wheel")${extras:+ with the extras [$extras]} into $VENV"
  if ! "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "${pip_index[@]}" "$requirement"; then
    local hint=""
    if [[ ",$extras," == *,pi,* ]]; then
      hint="; spidev builds from source where no wheel exists: sudo apt-get install -y build-essential python3-dev"
    fi
    die "pip could not install $requirement (see pip's message above)$hint"
  fi
  # The step above keeps an installed edgemon of the same version; this one puts in the
  # given build, so that a rebuilt wheel always replaces the running code.
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps --force-reinstall "$wheel" ||
    die "pip could not reinstall $wheel (see pip's message above)"
  say "installed $("$VENV/bin/edgemon" --version)"
  if ! "$VENV/bin/python" -c 'from edgemon.features._order import COMPILED; raise SystemExit(not COMPILED)'; then
    say "note: the feature stage's C kernel was not built, so it uses numpy: same results, more CPU for median and quartile features; install gcc and python3-dev and run this again to build it"
  fi
}

# Copies $1 to $2 with mode 0640, owned by root:edgemon, replacing $2 atomically so that a
# restarting daemon never reads a half-written file.
install_private_file() {
  local source="$1" target="$2"
  local partial="$target.partial.$$"
  install -m 0640 "$source" "$partial"
  if [ -z "$root" ]; then
    chown "root:$SERVICE_USER" "$partial"
  fi
  mv -f "$partial" "$target"
}

install_config() {
  mkdir -p "$ETC"
  chmod 0750 "$ETC"
  if [ -z "$root" ]; then
    chown "root:$SERVICE_USER" "$ETC"
  fi

  local target="$ETC/edgemon.toml"
  if [ -n "$config" ]; then
    if [ -f "$target" ] && cmp -s "$config" "$target"; then
      say "$target is unchanged"
    else
      if [ -f "$target" ]; then
        local backup
        backup="$target.bak-$(date +%Y%m%d-%H%M%S)"
        cp -p "$target" "$backup"
        say "kept the previous config as $backup"
      fi
      install_private_file "$config" "$target"
      say "installed $config as $target"
    fi
  elif [ -e "$target" ]; then
    say "kept the existing $target"
  else
    install_private_file "$EXAMPLE_CONFIG" "$target"
    say "installed the example config as $target: edit it before you enable the service"
  fi

  if [ -n "$model" ]; then
    if [ -f "$ETC/model.onnx" ] && cmp -s "$model" "$ETC/model.onnx"; then
      say "$ETC/model.onnx is unchanged"
    else
      install_private_file "$model" "$ETC/model.onnx"
      say "installed $model as $ETC/model.onnx"
    fi
  fi
}

install_unit() {
  mkdir -p "$(dirname "$UNIT")"
  if [ -f "$UNIT" ] && cmp -s "$UNIT_SOURCE" "$UNIT"; then
    say "$UNIT is unchanged"
  else
    install -m 0644 "$UNIT_SOURCE" "$UNIT"
    say "installed $UNIT"
  fi
  if [ -z "$root" ]; then
    systemctl daemon-reload
  fi
}

# Prints each model path the config names, one a line, resolved as the daemon resolves them
# (relative to the config's folder). Prints nothing for a config that is not valid TOML:
# `edgemon run --check` then reports the problem.
configured_models() {
  "$VENV/bin/python" - "$ETC/edgemon.toml" <<'EOF' 2>/dev/null || true
import pathlib
import sys
import tomllib

path = pathlib.Path(sys.argv[1])
config = tomllib.loads(path.read_text())
for sensor in config.get("sensors", []):
    model = sensor.get("model") if isinstance(sensor, dict) else None
    if isinstance(model, str):
        print(path.parent / model)
EOF
}

enable_service() {
  if [ -n "$root" ]; then
    say "--root: not enabling or starting the service"
    return
  fi
  local missing=() path
  while IFS= read -r path; do
    [ -f "$path" ] || missing+=("$path")
  done < <(configured_models)
  if [ "${#missing[@]}" -gt 0 ]; then
    die "not enabling edgemon: no model at ${missing[*]}. Copy the model that \`edgemon train\` wrote there (sudo install -o root -g edgemon -m 0640 model.onnx ${missing[0]}) or rerun with --model FILE, then: sudo systemctl enable --now edgemon"
  fi
  say "checking $ETC/edgemon.toml as the user $SERVICE_USER"
  if ! runuser -u "$SERVICE_USER" -- "$VENV/bin/edgemon" run --config "$ETC/edgemon.toml" --check; then
    die "not enabling edgemon: \`edgemon run --check\` rejected $ETC/edgemon.toml (message above); fix it, then: sudo systemctl enable --now edgemon"
  fi
  systemctl enable --quiet "$UNIT_NAME"
  # restart, not start: a running daemon must pick up the new code, model and config.
  if ! systemctl restart "$UNIT_NAME"; then
    die "edgemon did not start; see: journalctl -u edgemon -n 50 --no-pager"
  fi
  say "edgemon is $(systemctl is-active "$UNIT_NAME"): $(systemctl show --property=StatusText --value "$UNIT_NAME")"
}

print_next_steps() {
  if [ -n "$root" ]; then
    say "staged under $root"
  elif $enable; then
    say "logs: journalctl -u edgemon -f"
  elif systemctl is-active --quiet "$UNIT_NAME"; then
    warn "the running daemon still uses the previous code, model and config: sudo systemctl restart edgemon"
  else
    say "next: copy your model to $ETC/model.onnx (or rerun with --model FILE), edit $ETC/edgemon.toml, then: sudo systemctl enable --now edgemon"
  fi
}

uninstall_all() {
  if [ -z "$root" ]; then
    if systemctl cat "$UNIT_NAME" >/dev/null 2>&1; then
      systemctl disable --now --quiet "$UNIT_NAME" || warn "could not stop and disable $UNIT_NAME"
      say "stopped and disabled $UNIT_NAME"
    fi
  fi
  if [ -e "$UNIT" ]; then
    rm -f "$UNIT"
    say "removed $UNIT"
  fi
  if [ -z "$root" ]; then
    systemctl daemon-reload
  fi
  if [ -e "$VENV" ]; then
    rm -rf "$VENV"
    rmdir "$(dirname "$VENV")" 2>/dev/null || true
    say "removed $VENV"
  fi
  if ! $purge; then
    say "kept $ETC and $STATE (states not yet delivered); remove them with --uninstall --purge"
    return
  fi
  rm -rf "$ETC" "$STATE"
  say "removed $ETC and $STATE"
  if [ -z "$root" ] && getent passwd "$SERVICE_USER" >/dev/null; then
    userdel "$SERVICE_USER"
    say "removed the user $SERVICE_USER"
  fi
  if [ -z "$root" ] && getent group "$SERVICE_USER" >/dev/null; then
    groupdel "$SERVICE_USER"
  fi
}

# --- main -----------------------------------------------------------------------------

check_system

if $uninstall; then
  uninstall_all
  exit 0
fi

if [ "$extras" = default ]; then
  case "$(uname -m)" in
    aarch64 | arm64 | armv7l | armv6l) extras=pi ;;
    *) extras="" ;;
  esac
fi
pip_index=()
if [ -n "$wheelhouse" ]; then
  pip_index=(--no-index --find-links "$wheelhouse")
fi

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT

create_user
create_venv
install_package "$scratch"
install_config
install_unit
if $enable; then
  enable_service
fi
print_next_steps
