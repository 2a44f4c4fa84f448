#!/usr/bin/env bash
# deps.sh WHAT... - makes sure what a make target needs is installed; quiet when nothing is missing.
#
# WHAT is a target:  build examples  (cc, hiredis; wanted: mhd)
#                    test            (cc, gcc, clang, g++, clang++, redis-server, redis-sentinel, hiredis,
#                                     sanitizer, pyredis, npm: test_interop's Python peer and its Node peer's ioredis,
#                                     which tests/interop/setup.sh fetches with npm; wanted: mhd, prometheus)
#                    demo bench      (cc, redis-server, hiredis)
#                    cxx             (g++, clang++, hiredis)
#                    sanitize        (sanitizer, redis-server, hiredis)
#                    valgrind        (cc, valgrind, redis-server, hiredis)
#                    hiredis1        (cc, gcc, clang, g++, clang++, redis-server, redis-sentinel, sanitizer, libssl, openssl,
#                                     npm): make test-hiredis1, which builds hiredis 1.2.0 itself, so
#                                     not Debian's hiredis; npm fetches its sources (tests/hiredis1.sh);
#                                     wanted: mhd, prometheus
#                    cross           (redis-server, hiredis, and per CROSS_ARCHS (default "armhf s390x"):
#                                     the Debian cross compiler and its libc (gcc-arm-linux-gnueabihf,
#                                     libc6-dev-armhf-cross), hiredis of that architecture from Debian's
#                                     multiarch archive (libhiredis-dev:armhf, after dpkg --add-architecture
#                                     armhf), qemu-user): make test-cross
#                    chaos-failover  (cc, redis-server, redis-sentinel, hiredis): tests/test_sentinel.c's long form
# or one of those needs itself. "cc" is $CC (default cc); "sanitizer" means $SAN_CC (default clang)
# can build and run a -fsanitize=address,undefined program. "mhd" is libmicrohttpd's headers and library
# (rsbusctl's exporter command), "prometheus" the prometheus and promtool commands (tests/test_exporter.c).
#
# Something missing: as root with apt-get (Debian, Ubuntu), it runs apt-get update once and installs
# the packages; otherwise (or with DEPS_NO_INSTALL=1) it prints what to install and exits 1.
# "Wanted" parts are installed the same way, but without them the target still works (rsbusctl is built
# without its exporter, test_exporter skips what needs them and says so): a wanted part that cannot be
# installed is a note on stderr, not a failure.
set -u

CC=${CC:-cc}
SAN_CC=${SAN_CC:-clang}

needs=" "
wants=" "
need() { local n; for n in "$@"; do case $needs in *" $n "*) ;; *) needs="$needs$n ";; esac; done; }
want() { local n; for n in "$@"; do case $wants in *" $n "*) ;; *) wants="$wants$n ";; esac; done; }
for what in "$@"; do
    case $what in
        build|examples) need cc hiredis; want mhd ;;
        test)           need cc gcc clang g++ clang++ redis-server redis-sentinel hiredis sanitizer valgrind pyredis npm; want mhd prometheus ;;
        chaos-failover) need cc redis-server redis-sentinel hiredis ;;
        demo|bench)     need cc redis-server hiredis ;;
        cxx)            need g++ clang++ hiredis ;;
        sanitize)       need sanitizer redis-server hiredis ;;
        valgrind)       need cc valgrind redis-server hiredis ;;
        hiredis1)       need cc gcc clang g++ clang++ redis-server redis-sentinel sanitizer libssl openssl npm; want mhd prometheus ;;
        cross)          need cc redis-server hiredis qemu-user
                        for a in ${CROSS_ARCHS:-armhf s390x}; do
                            case $a in
                                armhf|s390x) need "cross-$a" ;;
                                *) echo "deps.sh: CROSS_ARCHS: unknown architecture '$a' (armhf, s390x)" >&2; exit 2 ;;
                            esac
                        done ;;
        cc|gcc|clang|g++|clang++|redis-server|redis-sentinel|hiredis|sanitizer|valgrind|libssl|openssl|npm|pyredis|qemu-user) need "$what" ;;
        cross-armhf|cross-s390x) need "$what" ;;
        mhd|prometheus) want "$what" ;;
        *) echo "deps.sh: unknown requirement '$what'" >&2; exit 2 ;;
    esac
done

have() { command -v "$1" >/dev/null 2>&1; }
join() { local out= s; for s in "$@"; do out="${out:+$out; }$s"; done; echo "$out"; }
first_word() { set -- $1; echo "${1:-}"; }

# The Debian package that provides a compiler command.
compiler_pkg() {
    case $(basename "$(first_word "$1")") in
        clang*) echo clang ;;
        g++*|c++) echo g++ ;;
        *) echo gcc ;;
    esac
}

has_hiredis() {
    [ -f /usr/include/hiredis/hiredis.h ] || [ -f /usr/local/include/hiredis/hiredis.h ] ||
        { have pkg-config && pkg-config --exists hiredis; }
}

# OpenSSL's headers and libraries (libssl-dev), for hiredis_ssl and -DRSBUS_TLS
has_libssl() {
    { [ -f /usr/include/openssl/ssl.h ] || [ -f /usr/local/include/openssl/ssl.h ]; } ||
        { have pkg-config && pkg-config --exists openssl; }
}

# libmicrohttpd's headers and library (libmicrohttpd-dev), for rsbusctl's exporter
has_mhd() {
    { have pkg-config && pkg-config --exists libmicrohttpd; } ||
        [ -f /usr/include/microhttpd.h ] || [ -f /usr/local/include/microhttpd.h ]
}

has_sanitizer() {
    local dir ok=1
    have "$(first_word "$SAN_CC")" || return 1
    dir=$(mktemp -d "${TMPDIR:-/tmp}/rsbus-deps.XXXXXX") || return 1
    printf 'int main(void) { return 0; }\n' > "$dir/t.c"
    $SAN_CC -fsanitize=address,undefined "$dir/t.c" -o "$dir/t" >/dev/null 2>&1 && "$dir/t" && ok=0
    rm -rf "$dir"
    return $ok
}

# Debian's names for a cross architecture: its GNU triplet and its qemu-user binary.
cross_triplet() { case $1 in armhf) echo arm-linux-gnueabihf ;; s390x) echo s390x-linux-gnu ;; esac; }
cross_qemu() { case $1 in armhf) echo qemu-arm ;; s390x) echo qemu-s390x ;; esac; }
foreign_archs=()

# Fills 'missing' (what, for people) and 'pkgs' (Debian package names) for the names given (default:
# the needed ones).
check() {
    local n c
    missing=()
    pkgs=()
    for n in ${1-$needs}; do
        case $n in
            mhd)          has_mhd || { missing+=("libmicrohttpd headers and library"); pkgs+=(libmicrohttpd-dev pkg-config); } ;;
            prometheus)   { have prometheus && have promtool; } || { missing+=("prometheus and promtool"); pkgs+=(prometheus); } ;;
            cc)           c=$(first_word "$CC"); have "$c" || { missing+=("C compiler '$c'"); pkgs+=("$(compiler_pkg "$c")"); } ;;
            gcc|g++)      have "$n" || { missing+=("$n"); pkgs+=("$n"); } ;;
            clang|clang++) have "$n" || { missing+=("$n"); pkgs+=(clang); } ;;
            redis-server) have "${REDIS_SERVER:-redis-server}" || { missing+=("redis-server"); pkgs+=(redis-server); } ;;
            # Debian packages the sentinel apart (redis-sentinel, a link to the same binary): tests/test_sentinel.c
            redis-sentinel) have "${REDIS_SENTINEL:-redis-sentinel}" || { missing+=("redis-sentinel"); pkgs+=(redis-sentinel); } ;;
            hiredis)      has_hiredis || { missing+=("hiredis headers and library"); pkgs+=(libhiredis-dev pkg-config); } ;;
            valgrind)     have valgrind || { missing+=("valgrind"); pkgs+=(valgrind); } ;;
            libssl)       has_libssl || { missing+=("OpenSSL headers and libraries"); pkgs+=(libssl-dev); } ;;
            openssl)      have openssl || { missing+=("the openssl command"); pkgs+=(openssl); } ;;
            # node and npm installed some other way (nodesource, nvm) are fine: only a missing npm
            # command installs Debian's npm (which brings nodejs)
            npm)          have npm || { missing+=("npm"); pkgs+=(npm); } ;;
            # Debian's python3 with python3-redis (a python3 earlier on PATH, e.g. pyenv's, may lack it)
            pyredis)      { python3 -c 'import redis' >/dev/null 2>&1 || /usr/bin/python3 -c 'import redis' >/dev/null 2>&1; } ||
                              { missing+=("python3-redis"); pkgs+=(python3-redis); } ;;
            qemu-user)    have qemu-arm && have qemu-s390x || { missing+=("qemu-user"); pkgs+=(qemu-user); } ;;
            cross-*)
                c=${n#cross-}
                t=$(cross_triplet "$c")
                have "$t-gcc" || { missing+=("$t-gcc"); pkgs+=("gcc-$t"); }
                [ -f "/usr/$t/include/stdio.h" ] || { missing+=("the C library for $t"); pkgs+=("libc6-dev-$c-cross"); }
                [ -f "/usr/lib/$t/libhiredis.a" ] || {
                    missing+=("hiredis for $c (/usr/lib/$t/libhiredis.a)"); pkgs+=("libhiredis-dev:$c"); foreign_archs+=("$c"); }
                have "$(cross_qemu "$c")" || { missing+=("$(cross_qemu "$c")"); pkgs+=(qemu-user); } ;;
            sanitizer)
                if ! has_sanitizer; then
                    c=$(first_word "$SAN_CC")
                    missing+=("a working '$SAN_CC -fsanitize=address,undefined'")
                    pkgs+=("$(compiler_pkg "$c")")
                    case $(compiler_pkg "$c") in clang) pkgs+=(libclang-rt-dev) ;; esac
                fi ;;
        esac
    done
}

can_install() { [ "$(id -u)" = 0 ] && have apt-get && [ "${DEPS_NO_INSTALL:-0}" = 0 ]; }

# The wanted parts first: installed when possible, otherwise a note, never a failure. Installing them
# needs no policy-rc.d: Debian's prometheus starts its service, which listens on :9090 and is harmless
# here (the tests start their own on free loopback ports).
check "$wants"
if [ ${#missing[@]} -gt 0 ]; then
    if can_install; then
        echo "deps.sh: wanted: $(join "${missing[@]}"); installing ${pkgs[*]}" >&2
        export DEBIAN_FRONTEND=noninteractive
        { apt-get update -q && apt-get install -y -q --no-install-recommends "${pkgs[@]}"; } >&2 ||
            echo "deps.sh: apt-get install ${pkgs[*]} failed: going on without them" >&2
        hash -r
        check "$wants"
    fi
    [ ${#missing[@]} -eq 0 ] ||
        echo "deps.sh: note: not installed: $(join "${missing[@]}") (Debian/Ubuntu: apt-get install ${pkgs[*]});" \
             "without libmicrohttpd rsbusctl has no exporter command, and tests/test_exporter.c skips what needs what is missing" >&2
fi

check
[ ${#missing[@]} -eq 0 ] && exit 0

# unique package list, in order
uniq_pkgs=()
for p in "${pkgs[@]}"; do
    case " ${uniq_pkgs[*]-} " in *" $p "*) ;; *) uniq_pkgs+=("$p") ;; esac
done

if can_install; then
    echo "deps.sh: missing: $(join "${missing[@]}")" >&2
    echo "deps.sh: installing ${uniq_pkgs[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    # libhiredis-dev:ARCH comes from Debian's multiarch archive: the architecture must be known to dpkg
    for a in ${foreign_archs[@]+"${foreign_archs[@]}"}; do
        dpkg --print-foreign-architectures | grep -qx "$a" || dpkg --add-architecture "$a" || exit 1
    done
    if ! apt-get update -q >&2 || ! apt-get install -y -q --no-install-recommends "${uniq_pkgs[@]}" >&2; then
        echo "deps.sh: apt-get install ${uniq_pkgs[*]} failed" >&2
        exit 1
    fi
    hash -r
    check
    [ ${#missing[@]} -eq 0 ] && exit 0
    echo "deps.sh: still missing after installing: $(join "${missing[@]}")" >&2
    exit 1
fi

fedora=() brew=()
for p in "${uniq_pkgs[@]}"; do
    case $p in
        libhiredis-dev)  fedora+=(hiredis-devel); brew+=(hiredis) ;;
        pkg-config)      fedora+=(pkgconf-pkg-config); brew+=(pkg-config) ;;
        redis-server)    fedora+=(redis); brew+=(redis) ;;
        redis-sentinel)  fedora+=(redis); brew+=(redis) ;;
        g++)             fedora+=(gcc-c++) ;;
        clang)           fedora+=(clang); brew+=(llvm) ;;
        libclang-rt-dev) fedora+=(compiler-rt) ;;
        gcc)             fedora+=(gcc libasan libubsan) ;;
        valgrind)        fedora+=(valgrind); brew+=(valgrind) ;;
        libssl-dev)      fedora+=(openssl-devel); brew+=(openssl@3) ;;
        openssl)         fedora+=(openssl); brew+=(openssl@3) ;;
        npm)             fedora+=(npm); brew+=(node) ;;
        python3-redis)   fedora+=(python3-redis) ;;
    esac
done
{
    echo "Missing: $(join "${missing[@]}")"
    echo "Install it, then run make again:"
    for a in ${foreign_archs[@]+"${foreign_archs[@]}"}; do
        echo "  Debian/Ubuntu:  sudo dpkg --add-architecture $a && sudo apt-get update   (first)"
    done
    echo "  Debian/Ubuntu:  sudo apt-get install ${uniq_pkgs[*]}"
    [ ${#fedora[@]} -gt 0 ] && echo "  Fedora:         sudo dnf install ${fedora[*]}"
    [ ${#brew[@]} -gt 0 ] && echo "  macOS:          brew install ${brew[*]}"
} >&2
exit 1
