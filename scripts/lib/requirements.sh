# What building and running the project needs, installed when missing (sourced by scripts/serve, scripts/test and
# scripts/bench, which add what they need beyond the build).
#   missing=()                 the Debian packages to install
#   check_build_requirements   adds what the build lacks (libhiredis-dev, libssl-dev, pkg-config) to `missing`
#   install_missing NAME       installs `missing` with apt-get (sudo when not root); without apt-get, prints what to
#                              install by hand (macOS: Homebrew) and fails
#   service_stop SERVICE…      stops servers Debian starts on install (the scripts run their own throwaway ones)

missing=()

check_build_requirements() {
    if ! command -v swift >/dev/null; then
        echo "swift not found: install Swift 6.1 or later (https://www.swift.org/install) and put it on PATH" >&2
        return 1
    fi
    command -v pkg-config >/dev/null || missing+=(pkg-config)
    # The headers where Debian puts them, or wherever pkg-config knows them from (Homebrew, other distributions).
    [ -f /usr/include/hiredis/hiredis.h ] || pkg-config --exists hiredis 2>/dev/null || missing+=(libhiredis-dev)
    [ -f /usr/include/openssl/ssl.h ] || pkg-config --exists openssl 2>/dev/null || missing+=(libssl-dev)
}

sudo_prefix() { if [ "$(id -u)" -eq 0 ]; then echo ""; else echo "sudo"; fi; }

install_missing() {
    local name=$1
    [ ${#missing[@]} -eq 0 ] && return 0
    if ! command -v apt-get >/dev/null; then
        {
            echo "$name: missing ${missing[*]}, and apt-get is not available to install them."
            if [ "$(uname -s)" = Darwin ]; then
                echo "$name: on macOS: brew install hiredis openssl pkg-config (and redis postgresql for the tests)"
            else
                echo "$name: install the equivalent packages with your system's package manager, then run this again"
            fi
        } >&2
        return 1
    fi
    printf '%s: installing %s\n' "$name" "${missing[*]}" >&2
    local sudo
    sudo=$(sudo_prefix)
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    missing=()
}

service_stop() {
    local sudo
    sudo=$(sudo_prefix)
    for service in "$@"; do $sudo service "$service" stop >/dev/null 2>&1 || true; done
}
