#!/usr/bin/env bash
# Builds the container image's file tree WITHOUT Docker, by running the
# Dockerfile's own instructions, then checks the result the way the container
# would run it. CI has no Docker engine; this keeps the Dockerfile honest: it
# reads the Dockerfile rather than repeating it, and fails on any instruction
# or form it does not understand instead of skipping it.
#
#   scripts/build-image-tree.sh [OUT_DIR]
#
# Each stage gets a fake root OUT_DIR/<stage>/ (WORKDIR /app is
# OUT_DIR/<stage>/app). COPY copies from the repository (the build context,
# honouring .dockerignore for the paths it names) or from an earlier stage;
# RUN runs in the stage's WORKDIR with the stage's ENV. npm uses its local
# cache first (npm_config_prefer_offline) where Docker would download.
#
# Checks on the final stage:
#   - no devDependency of package.json is in its node_modules;
#   - ENTRYPOINT + CMD + --help exits 0 and prints "Usage:" (IMAGE_CHECK_ARGS
#     replaces "CMD --help", e.g. IMAGE_CHECK_ARGS=--help);
#   - the HEALTHCHECK command passes against a server answering /healthz on
#     HTTP_PORT, and fails when nothing listens there.
#
# Without OUT_DIR a temporary directory is used and removed at the end
# (KEEP_TREE=1 keeps it). Local Node is used for every stage; the Dockerfile's
# FROM image is only compared with it (major version), as a warning.
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
dockerfile="${DOCKERFILE:-$repo/Dockerfile}"
if [[ $# -gt 0 ]]; then
  out="$1"
  mkdir -p "$out"
else
  out="$(mktemp -d "${TMPDIR:-/tmp}/image-tree.XXXXXX")"
  if [[ "${KEEP_TREE:-}" != "1" ]]; then trap 'rm -rf "$out"' EXIT; fi
fi
out="$(cd "$out" && pwd)"

die() { echo "build-image-tree: $*" >&2; exit 1; }
log() { echo "build-image-tree: $*" >&2; }

# A JSON array (exec form) as NUL-separated words.
json_words() { node -e 'const v = JSON.parse(process.argv[1]); if (!Array.isArray(v) || v.some((s) => typeof s !== "string")) process.exit(3); for (const s of v) process.stdout.write(s + "\0");' "$1" || die "not a JSON array of strings: $1"; }

# .dockerignore entries, for the check that COPY does not name an ignored path.
ignored=()
if [[ -f "$repo/.dockerignore" ]]; then
  while IFS= read -r line; do
    line="${line%%#*}"; line="${line%"${line##*[![:space:]]}"}"
    [[ -n "$line" ]] && ignored+=("$line")
  done < "$repo/.dockerignore"
fi

# Stage state.
declare -A stage_workdir=() stage_env=()
stage=""; workdir="/"; envs=""; user=""; stage_count=0
healthcheck=""; entrypoint=""; cmd=""

root_of() { echo "$out/stages/$1"; }
in_stage() { # container path -> host path in the current stage
  local p="$1"
  [[ "$p" == /* ]] || p="${workdir%/}/$p"
  echo "$(root_of "$stage")$p"
}

do_from() {
  local image="$1" name="${3:-}"
  [[ $# -eq 1 || ( $# -eq 3 && "${2,,}" == "as" ) ]] || die "FROM: expected 'FROM image [AS name]', got: FROM $*"
  [[ -n "$name" ]] || name="stage$stage_count"
  stage_count=$((stage_count + 1))
  if [[ -n "${stage_workdir[$image]+x}" ]]; then
    cp -a "$(root_of "$image")" "$(root_of "$name")"
    workdir="${stage_workdir[$image]}"; envs="${stage_env[$image]}"
  else
    mkdir -p "$(root_of "$name")"
    workdir="/"; envs=""
    if [[ "$image" =~ ^node:([0-9]+) ]]; then
      local want="${BASH_REMATCH[1]}" have
      have="$(node -p 'process.versions.node.split(".")[0]')"
      [[ "$want" == "$have" ]] || log "note: $image runs Node $want; this tree is built and checked with local Node $have"
    else
      die "FROM $image: only node:<version> images and earlier stages are understood"
    fi
  fi
  stage="$name"; user=""
  stage_workdir[$stage]="$workdir"; stage_env[$stage]="$envs"
  log "stage $stage (FROM $image)"
}

do_workdir() {
  [[ $# -eq 1 && "$1" == /* ]] || die "WORKDIR: expected one absolute path, got: $*"
  workdir="$1"; stage_workdir[$stage]="$workdir"
  mkdir -p "$(in_stage "$workdir")"
}

do_env() {
  local pair
  for pair in "$@"; do
    [[ "$pair" =~ ^[A-Za-z_][A-Za-z0-9_]*=[^\"\'\$]*$ ]] || die "ENV: only KEY=value pairs without quotes or \$ are understood, got: $pair"
    envs+="${envs:+ }$pair"
  done
  stage_env[$stage]="$envs"
}

is_ignored() {
  local path="${1#./}" pattern
  path="${path%/}"
  for pattern in "${ignored[@]}"; do
    [[ "$path" == $pattern || "${path%%/*}" == $pattern ]] && return 0
  done
  return 1
}

do_copy() {
  local from="" args=() a
  for a in "$@"; do
    case "$a" in
      --from=*) from="${a#--from=}" ;;
      --chown=* | --chmod=* | --link) die "COPY: $a is not understood by this script (and the runtime files should stay root-owned)" ;;
      --*) die "COPY: unknown option $a" ;;
      *) args+=("$a") ;;
    esac
  done
  [[ ${#args[@]} -ge 2 ]] || die "COPY: expected sources and a destination, got: COPY $*"
  local dest="${args[-1]}" sources=("${args[@]:0:${#args[@]}-1}")
  local target; target="$(in_stage "$dest")"
  local into_dir=0
  [[ "$dest" == */ || ${#sources[@]} -gt 1 ]] && into_dir=1
  [[ $into_dir -eq 1 ]] && mkdir -p "$target"
  local src host
  for src in "${sources[@]}"; do
    [[ "$src" != *[\*\?\[]* ]] || die "COPY: wildcards are not understood: $src"
    if [[ -n "$from" ]]; then
      [[ -n "${stage_workdir[$from]+x}" ]] || die "COPY --from=$from: no such earlier stage"
      [[ "$src" == /* ]] || src="${stage_workdir[$from]%/}/$src"
      host="$(root_of "$from")$src"
    else
      [[ "$src" != /* && "$src" != *..* ]] || die "COPY: a context path must be relative and inside the repository: $src"
      is_ignored "$src" && die "COPY $src: the path is excluded by .dockerignore, so Docker would not find it"
      host="$repo/${src#./}"
    fi
    [[ -e "$host" ]] || die "COPY: $src does not exist${from:+ in stage $from}"
    if [[ -d "$host" ]]; then
      # Docker copies a directory's contents, not the directory itself.
      mkdir -p "$target"
      cp -a "$host/." "$target/"
    elif [[ $into_dir -eq 1 ]]; then
      cp -a "$host" "$target/"
    else
      mkdir -p "$(dirname "$target")"
      cp -a "$host" "$target"
    fi
  done
}

do_run() {
  local command="$1"
  [[ "$command" != \[* ]] || die "RUN: only the shell form is understood, got: RUN $command"
  local dir; dir="$(in_stage "$workdir")"
  mkdir -p "$dir"
  log "[$stage] RUN $command"
  # The stage's ENV, npm reading its cache first; PATH and HOME from here.
  (cd "$dir" && env $envs npm_config_prefer_offline=true npm_config_update_notifier=false bash -eo pipefail -c "$command") >&2 ||
    die "[$stage] RUN $command: failed"
}

# Read the Dockerfile: comments and blank lines out, continuation lines joined.
instructions=()
current=""
while IFS= read -r line || [[ -n "$line" ]]; do
  [[ -z "$current" && ( "$line" =~ ^[[:space:]]*# || "$line" =~ ^[[:space:]]*$ ) ]] && continue
  if [[ "$line" == *\\ ]]; then
    current+="${line%\\} "
    continue
  fi
  instructions+=("$current$line")
  current=""
done < "$dockerfile"
[[ -z "$current" ]] || die "Dockerfile ends inside a continued line"

for instruction in "${instructions[@]}"; do
  keyword="${instruction%%[[:space:]]*}"
  rest="${instruction#"$keyword"}"; rest="${rest#"${rest%%[![:space:]]*}"}"
  keyword="${keyword^^}"
  [[ -n "$stage" || "$keyword" == "FROM" ]] || die "$keyword before the first FROM"
  case "$keyword" in
    FROM) read -r -a words <<< "$rest"; do_from "${words[@]}" ;;
    WORKDIR) read -r -a words <<< "$rest"; do_workdir "${words[@]}" ;;
    ENV) read -r -a words <<< "$rest"; do_env "${words[@]}" ;;
    COPY) read -r -a words <<< "$rest"; do_copy "${words[@]}" ;;
    RUN) do_run "$rest" ;;
    USER) user="$rest" ;;
    EXPOSE) [[ "$rest" =~ ^[0-9]+(/tcp)?$ ]] || die "EXPOSE: expected one port, got: $rest" ;;
    HEALTHCHECK)
      [[ "$rest" =~ CMD[[:space:]]+(\[.*\])$ ]] || die "HEALTHCHECK: only the exec form (CMD [\"...\"]) is understood, got: $rest"
      healthcheck="${BASH_REMATCH[1]}" ;;
    ENTRYPOINT) [[ "$rest" == \[* ]] || die "ENTRYPOINT: only the exec form is understood"; entrypoint="$rest" ;;
    CMD) [[ "$rest" == \[* ]] || die "CMD: only the exec form is understood"; cmd="$rest" ;;
    *) die "instruction $keyword is not understood by this script: teach it, or keep the Dockerfile to what it runs" ;;
  esac
done

[[ -n "$stage" ]] || die "no FROM in $dockerfile"
[[ -n "$entrypoint" ]] || die "the final image has no ENTRYPOINT"
[[ "$user" == "node" ]] || die "the final stage must run as USER node (non-root), got: '${user:-root}'"
app="$(in_stage "$workdir")"
log "final stage $stage: $app"

# 1. Production dependencies only.
mapfile -t dev < <(node -e 'for (const d of Object.keys(require(process.argv[1]).devDependencies ?? {})) console.log(d)' "$app/package.json")
for d in "${dev[@]}"; do
  [[ ! -e "$app/node_modules/$d" ]] || die "devDependency $d is in the final image's node_modules"
done
[[ -e "$app/node_modules/.bin/tsc" ]] && die "the TypeScript compiler is in the final image"
for absent in src tests; do [[ ! -e "$app/$absent" ]] || die "$absent/ is in the final image"; done

# 2. The image's command answers --help.
mapfile -d '' -t ep < <(json_words "$entrypoint")
if [[ -n "${IMAGE_CHECK_ARGS+x}" ]]; then
  read -r -a check <<< "$IMAGE_CHECK_ARGS"
else
  mapfile -d '' -t check < <(json_words "${cmd:-[]}")
  check+=(--help)
fi
log "running: ${ep[*]} ${check[*]}"
set +e
help="$(cd "$app" && env -i PATH="$PATH" HOME="$HOME" $envs "${ep[@]}" "${check[@]}" 2>&1)"
code=$?
set -e
[[ $code -eq 0 ]] || die "'${ep[*]} ${check[*]}' exited $code: $help"
[[ "$help" == *"Usage:"* ]] || die "'${ep[*]} ${check[*]}' printed no usage: $help"

# 3. The HEALTHCHECK command: healthy against /healthz, unhealthy with nothing listening.
if [[ -n "$healthcheck" ]]; then
  mapfile -d '' -t hc < <(json_words "$healthcheck")
  port_file="$out/healthz.port"
  node -e '
    const srv = require("node:http").createServer((q, s) => { s.statusCode = q.url === "/healthz" ? 200 : 404; s.end("ok"); });
    srv.listen(0, "127.0.0.1", () => require("node:fs").writeFileSync(process.argv[1], String(srv.address().port)));
    setTimeout(() => process.exit(0), 20000).unref?.();
    process.on("SIGTERM", () => process.exit(0));
  ' "$port_file" &
  server=$!
  for _ in $(seq 1 100); do [[ -s "$port_file" ]] && break; sleep 0.05; done
  port="$(cat "$port_file" 2>/dev/null || true)"
  [[ -n "$port" ]] || { kill "$server" 2>/dev/null || true; die "test /healthz server did not start"; }
  set +e
  (cd "$app" && env -i PATH="$PATH" $envs HTTP_PORT="$port" "${hc[@]}")
  healthy=$?
  kill "$server" 2>/dev/null; wait "$server" 2>/dev/null
  (cd "$app" && env -i PATH="$PATH" $envs HTTP_PORT="$port" "${hc[@]}")
  unhealthy=$?
  set -e
  [[ $healthy -eq 0 ]] || die "HEALTHCHECK failed against a healthy /healthz on port $port (exit $healthy)"
  [[ $unhealthy -ne 0 ]] || die "HEALTHCHECK passed with nothing listening on port $port"
  log "HEALTHCHECK: ok against /healthz, failing when nothing listens"
fi

echo "image tree OK: $app"
