#!/usr/bin/env bash
# N replicas of the app behind nginx, in the foreground; Ctrl-C or SIGTERM stops them all.
#
#   bash deploy/serve.sh --replicas N --port P [--host H]
#   bash deploy/serve.sh --backend HOST:PORT --backend HOST:PORT --port P   (replicas elsewhere)
#
# Options:
#   --replicas N          replicas to start here (2); each is deploy/entrypoint.sh on 127.0.0.1
#   --port P              nginx's port (8500)
#   --host H              nginx's address (127.0.0.1; 0.0.0.0 for every interface)
#   --replica-port Q      the first replica's port (P + 1); the others follow it
#   --backend HOST:PORT   a replica already running elsewhere (repeatable); none are started here
#   --check-interval S    seconds between health checks of each replica (2)
#   --run-dir D           nginx's configuration, logs and pid, the replicas' logs
#                         (${TMPDIR:-/tmp}/latent-space-explorer-P)
#   --no-prepare          do not build tensorflow-datasets' cache before starting the replicas
#
# Installs Debian's nginx with apt-get if it is missing (as root). The replicas share
# weights/ (read-only), AE_MODELS_DIR (trained/ unless set), TFDS_DATA_DIR (tfds's default
# unless set) and one STREAMLIT_SERVER_COOKIE_SECRET (made here unless set). nginx keeps each
# browser session on one replica (a cookie), and a health watcher in this script checks
# every replica's /_stcore/health every S seconds and takes a failed one out of nginx's
# upstreams (reloading nginx), and puts it back once it answers. See docs/deploy.md.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
export PATH=$PATH:/usr/local/sbin:/usr/sbin:/sbin  # nginx, and dpkg under `env -i PATH=/usr/bin:/bin`

die() { echo "serve.sh: $*" >&2; exit 1; }
log() { echo "serve.sh $(date +%H:%M:%S): $*"; }

replicas=2 port=8500 host=127.0.0.1 replica_port="" interval=2 run_dir="" prepare=1
backends=()
need() { [[ $# -ge 2 && -n $2 ]] || die "$1 needs a value (see the top of deploy/serve.sh)."; }
while [[ $# -gt 0 ]]; do
  case $1 in
    --replicas) need "$@"; replicas=$2; shift 2 ;;
    --port) need "$@"; port=$2; shift 2 ;;
    --host) need "$@"; host=$2; shift 2 ;;
    --replica-port) need "$@"; replica_port=$2; shift 2 ;;
    --backend) need "$@"; backends+=("$2"); shift 2 ;;
    --check-interval) need "$@"; interval=$2; shift 2 ;;
    --run-dir) need "$@"; run_dir=$2; shift 2 ;;
    --no-prepare) prepare=0; shift ;;
    -h | --help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option $1 (see bash deploy/serve.sh --help)." ;;
  esac
done
[[ $replicas =~ ^[1-9][0-9]*$ ]] || die "--replicas must be a whole number of at least 1, not '$replicas'."
[[ $port =~ ^[0-9]+$ ]] && ((port > 0 && port < 65536)) || die "--port must be a port number, not '$port'."
[[ $interval =~ ^[0-9]+([.][0-9]+)?$ ]] || die "--check-interval must be a number of seconds, not '$interval'."
replica_port=${replica_port:-$((port + 1))}
[[ $replica_port =~ ^[0-9]+$ ]] || die "--replica-port must be a port number, not '$replica_port'."

# taken HOST PORT: whether something already listens there.
taken() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }
probe_host() { [[ $1 == 0.0.0.0 || $1 == "*" ]] && echo 127.0.0.1 || echo "$1"; }
taken "$(probe_host "$host")" "$port" && die "port $port on $host is already in use: stop what listens there, or choose another with --port."

# The replicas: names r1, r2, ... and their addresses.
names=() addrs=() pids=()
if ((${#backends[@]})); then
  for backend in "${backends[@]}"; do
    [[ $backend =~ ^[A-Za-z0-9.:_\[\]-]+:[0-9]+$ ]] || die "--backend must be HOST:PORT, not '$backend'."
    names+=("r$((${#names[@]} + 1))") addrs+=("$backend") pids+=("")
  done
else
  for ((i = 0; i < replicas; i++)); do
    q=$((replica_port + i))
    ((q < 65536)) || die "replica port $q is not a port number: choose a lower --replica-port."
    ((q != port)) || die "replica port $q is nginx's port: choose another --replica-port."
    taken 127.0.0.1 "$q" && die "port $q, for replica r$((i + 1)), is already in use: stop what listens there, or choose other ports with --replica-port."
    names+=("r$((i + 1))") addrs+=("127.0.0.1:$q") pids+=("")
  done
fi
count=${#names[@]}

# Stopping: nginx and the replicas this script started, whatever the reason (Ctrl-C,
# SIGTERM, an error), SIGTERM first and SIGKILL after 20 s.
nginx_pid="" stopping=0 own_temp=0 temp_dir=""
stop_all() {  # stop_all CODE: end nginx and the replicas this script started, then exit
  local code=$1 pid deadline
  trap - INT TERM EXIT
  ((stopping)) && exit "$code"
  stopping=1
  [[ -n $nginx_pid$(printf %s "${pids[@]}") ]] && log "stopping nginx and the replicas ..."
  [[ -n $nginx_pid ]] && kill -TERM "$nginx_pid" 2>/dev/null || true
  for pid in "${pids[@]}"; do [[ -n $pid ]] && kill -TERM "$pid" 2>/dev/null || true; done
  deadline=$((SECONDS + 20))
  for pid in $nginx_pid "${pids[@]}"; do
    [[ -n $pid ]] || continue
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
  done
  wait 2>/dev/null || true
  ((own_temp)) && rm -rf "$temp_dir"
  ((code == 0 || code >= 128)) && log "stopped."
  exit "$code"
}
trap 'stop_all 130' INT
trap 'stop_all 143' TERM
trap 'stop_all $?' EXIT

# nginx: Debian's package, installed here if missing.
if ! command -v nginx >/dev/null; then
  if [[ $EUID == 0 ]] && command -v apt-get >/dev/null; then
    log "installing Debian's nginx package (once) ..."
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx; } >/dev/null ||
      die "nginx is not installed, and apt-get could not install it (see apt-get's messages above)."
  fi
  command -v nginx >/dev/null || die "nginx is not installed: install Debian's nginx package (as root: apt-get install nginx) and run again."
fi

# The run folder: nginx's configuration, temp files, logs and pid; the replicas' logs.
run_dir=${run_dir:-${TMPDIR:-/tmp}/latent-space-explorer-$port}
mkdir -p "$run_dir" || die "cannot make the run folder $run_dir."
run_dir=$(cd "$run_dir" && pwd)
rm -f "$run_dir"/{nginx.pid,replicas,upstreams.conf,access.log,error.log} "$run_dir"/replica-*.log
# nginx's temp files: request bodies (uploads) and large responses (a 4.7 MB script) pass
# through them, written by its workers. Run as root, the workers drop to www-data, which may
# not reach into a private run folder: then they get a folder of their own under /tmp.
user_line="" temp_dir=$run_dir/tmp
if [[ $EUID == 0 ]]; then
  worker=nobody
  id -u www-data >/dev/null 2>&1 && worker=www-data
  user_line="user $worker $(id -gn "$worker");"
  mkdir -p "$temp_dir"
  chown "$worker" "$temp_dir"
  if ! runuser -u "$worker" -- test -w "$temp_dir" 2>/dev/null; then
    temp_dir=$(mktemp -d /tmp/latent-space-explorer-nginx.XXXXXX) && own_temp=1 && chown "$worker" "$temp_dir" &&
      runuser -u "$worker" -- test -w "$temp_dir" ||
      die "nginx's workers (user $worker) cannot write to $run_dir/tmp nor to a folder under /tmp: choose another --run-dir."
  fi
fi
mkdir -p "$temp_dir"/{client_body,proxy,fastcgi,uwsgi,scgi}
[[ $EUID != 0 ]] || chown -R "$worker" "$temp_dir"

# What the replicas share: set once here, inherited by each.
export AE_MODELS_DIR=${AE_MODELS_DIR:-$ROOT/trained}
export TFDS_DATA_DIR=${TFDS_DATA_DIR:-~/tensorflow_datasets}  # tfds's own default
mkdir -p "$AE_MODELS_DIR" "$TFDS_DATA_DIR"
export AE_MODELS_DIR=$(cd "$AE_MODELS_DIR" && pwd) TFDS_DATA_DIR=$(cd "$TFDS_DATA_DIR" && pwd)
if [[ -z ${STREAMLIT_SERVER_COOKIE_SECRET:-} ]]; then
  # One secret for all: a session's XSRF cookie, signed by one replica, is valid on the others.
  STREAMLIT_SERVER_COOKIE_SECRET=$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')
fi
export STREAMLIT_SERVER_COOKIE_SECRET

# The interpreter: $AE_PYTHON, else run.sh's set-up (the active virtual environment or .venv,
# made and installed if need be).
if ((${#backends[@]} == 0)); then
  if [[ -n ${AE_PYTHON:-} ]]; then
    py=$AE_PYTHON
  else
    source "$ROOT/run.sh"  # its functions only
    die() { echo "serve.sh: $*" >&2; exit 1; }  # ours again, after run.sh's
    setup_python requirements.txt
    [[ $py == /* ]] || py=$ROOT/$py
  fi
  export AE_PYTHON=$py
fi

# upstreams.conf: one round-robin upstream for new sessions, one per replica for the sessions
# pinned to it (the other replicas as backups, for the seconds before the watcher sees it
# down), and the maps from the route cookie to an upstream and from the address that
# answered to its name. Two states per replica:
# - up: it takes new sessions (the round robin);
# - alive: its process lives and takes connections, so its sessions' websockets are still
#   there. A replica that is not alive is marked `down` everywhere, and its cookie sends its
#   sessions to the next replica that is alive, so they all land on the same one. One that is
#   alive but slow keeps its sessions: moving their page requests elsewhere while their
#   websockets stay would break them (the images they show would be 404 on the other).
up=() alive=()
for ((i = 0; i < count; i++)); do up+=(0) alive+=(0); done
write_upstreams() {
  local i j k file=$run_dir/upstreams.conf.new mark
  {
    echo "# Written by deploy/serve.sh at $(date '+%F %T'); up: ${up[*]}; alive: ${alive[*]}"
    echo "upstream replicas {"
    for ((i = 0; i < count; i++)); do
      mark=""; ((up[i])) || mark=" down"
      echo "    server ${addrs[i]} max_fails=1 fail_timeout=5s$mark;"
    done
    echo "}"
    for ((i = 0; i < count; i++)); do
      echo "upstream replica_${names[i]} {"
      for ((j = 0; j < count; j++)); do
        k=$(((i + j) % count))
        mark=""; ((alive[k])) || mark=" down"
        if ((j == 0)); then
          echo "    server ${addrs[k]} max_fails=1 fail_timeout=5s$mark;"
        else
          echo "    server ${addrs[k]} backup$mark;"
        fi
      done
      echo "}"
    done
    echo 'map $cookie_ae_route $backend {'
    echo "    default replicas;"
    for ((i = 0; i < count; i++)); do
      k=$i  # its own replica, or the next one that is alive
      for ((j = 0; j < count; j++)); do
        if ((alive[(i + j) % count])); then k=$(((i + j) % count)); break; fi
      done
      echo "    ${names[i]} replica_${names[k]};"
    done
    echo "}"
    echo 'map $upstream_addr $served_by {'
    echo '    default "";'
    for ((i = 0; i < count; i++)); do
      echo "    \"~(^|[ ,:])${addrs[i]//./\\.}\$\" ${names[i]};"
    done
    echo "}"
  } >"$file"
  mv "$file" "$run_dir/upstreams.conf"
}


if ((prepare && ${#backends[@]} == 0)); then
  "$ROOT/deploy/entrypoint.sh" prepare || die "could not prepare the datasets in TFDS_DATA_DIR=$TFDS_DATA_DIR (see above)."
fi

for ((i = 0; i < count; i++)); do
  [[ -z ${pids[i]} && ${#backends[@]} == 0 ]] || continue
  PORT=${addrs[i]##*:} ADDRESS=127.0.0.1 "$ROOT/deploy/entrypoint.sh" >"$run_dir/replica-${names[i]}.log" 2>&1 </dev/null &
  pids[i]=$!
done
for ((i = 0; i < count; i++)); do  # name, address, pid (- when not started here)
  echo "${names[i]} ${addrs[i]} ${pids[i]:--}"
done >"$run_dir/replicas"

write_upstreams
sed -e "s|@RUN_DIR@|$run_dir|g" -e "s|@TEMP_DIR@|$temp_dir|g" -e "s|@LISTEN@|$host:$port|g" \
  -e "s|@USER_LINE@|$user_line|g" \
  "$ROOT/deploy/nginx.conf.template" >"$run_dir/nginx.conf"
nginx_args=(-p "$run_dir/" -c "$run_dir/nginx.conf")
nginx -h 2>&1 | grep -q -- "-e filename" && nginx_args+=(-e "$run_dir/error.log")
nginx "${nginx_args[@]}" -t -q 2>"$run_dir/nginx-test.log" ||
  die "nginx refused the configuration $run_dir/nginx.conf: $(grep -m1 emerg "$run_dir/nginx-test.log" || tail -1 "$run_dir/nginx-test.log")"
# nginx starts once the replicas answer (or the wait for them ends), with upstreams that
# already name them up: reloading it then would leave, for some milliseconds, its first
# worker (every replica "down") taking connections beside the new one, and a browser
# arriving in that window would get a 502.
start_nginx() {
  nginx "${nginx_args[@]}" -g "daemon off;" &
  nginx_pid=$!
  sleep 0.5
  if ! kill -0 "$nginx_pid" 2>/dev/null; then
    wait "$nginx_pid" || true
    if grep -q "Address already in use" "$run_dir/error.log" 2>/dev/null; then
      nginx_pid=""; die "port $port on $host is already in use: stop what listens there, or choose another with --port."
    fi
    nginx_pid=""; die "nginx did not start: $(tail -1 "$run_dir/error.log" 2>/dev/null)"
  fi
  log "nginx (pid $nginx_pid) on http://$host:$port, for ${count} replica(s): ${addrs[*]}; logs in $run_dir"
}

# healthy HOST PORT: 0 when /_stcore/health answers 200 within 2 s, 124 on a timeout, else 1.
healthy() {
  timeout 2 bash -c 'exec 3<>"/dev/tcp/$1/$2" || exit 1
    printf "GET /_stcore/health HTTP/1.0\r\nHost: %s\r\n\r\n" "$1" >&3
    read -r status <&3 && [[ $status == "HTTP/1."?" 200"* ]]' _ "$1" "$2" 2>/dev/null
}

# The watcher. A replica that refuses the connection, answers anything but 200, or whose
# process is gone is dead: taken out at once, its sessions moved. One that times out 3 checks
# in a row (a busy replica on 2 cores can be slow to answer) takes no new sessions but keeps
# its own. Either is put back after one good answer.
slow=()
for ((i = 0; i < count; i++)); do slow+=(0); done
ready=0 started=$SECONDS
while true; do
  changed=0
  for ((i = 0; i < count; i++)); do
    was=${up[i]}${alive[i]} rc=0
    if [[ -n ${pids[i]} ]] && ! kill -0 "${pids[i]}" 2>/dev/null; then
      rc=1
      if [[ ${pids[i]} != gone ]]; then
        wait "${pids[i]}" && code=0 || code=$?
        log "replica ${names[i]} (${addrs[i]}) exited with code $code; see $run_dir/replica-${names[i]}.log"
        ((ready)) || die "replica ${names[i]} stopped while starting: $(tail -3 "$run_dir/replica-${names[i]}.log" | tr '\n' ' ')"
        pids[i]=gone
      fi
    else
      healthy "${addrs[i]%:*}" "${addrs[i]##*:}" || rc=$?
    fi
    if ((rc == 0)); then
      up[i]=1 alive[i]=1 slow[i]=0
    elif ((rc == 124)); then
      slow[i]=$((slow[i] + 1))
      ((slow[i] < 3)) || up[i]=0
    else
      up[i]=0 alive[i]=0
    fi
    if [[ $was != "${up[i]}${alive[i]}" ]]; then
      changed=1
      if ((up[i])); then
        log "replica ${names[i]} (${addrs[i]}) is up"
      elif ((ready && alive[i])); then
        log "replica ${names[i]} (${addrs[i]}) is not answering in time: new sessions go to the others, its own stay"
      elif ((ready)); then
        log "replica ${names[i]} (${addrs[i]}) is down: its sessions go to the next replica that is alive"
      fi
    fi
  done
  if ((changed)); then
    write_upstreams
    [[ -z $nginx_pid ]] || kill -HUP "$nginx_pid" 2>/dev/null || true
  fi
  if [[ -n $nginx_pid ]] && ! kill -0 "$nginx_pid" 2>/dev/null; then
    nginx_pid=""
    die "nginx stopped; see $run_dir/error.log."
  fi
  if ((!ready)); then
    live=0
    for ((i = 0; i < count; i++)); do ((up[i])) && live=$((live + 1)); done
    if ((live == count)); then
      start_nginx
      for _ in {1..50}; do healthy "$(probe_host "$host")" "$port" && break; sleep 0.2; done
      ready=1
      log "ready: http://$host:$port serves ${count} replica(s) (health checked every ${interval} s)"
    elif ((SECONDS - started > 300)); then
      start_nginx
      ready=1
      log "only $live of $count replica(s) answered within 300 s; serving with those (see $run_dir)"
    fi
  fi
  sleep "$interval" &
  wait $! || true
done
