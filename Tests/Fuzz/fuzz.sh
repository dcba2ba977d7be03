#!/usr/bin/env bash
# libFuzzer harnesses for the parsers that read bytes from the network or text from a file.
#
# Each harness in Tests/Fuzz/*.swift defines LLVMFuzzerTestOneInput and checks invariants, not only "no crash":
#   http1-head      HeadParser (requests, responses): whole vs. split feeds agree, reset() parsers agree, every
#                   reported range lies inside the head, names are tokens, values are trimmed.
#   http1-chunked   ChunkedDecoder: whole vs. split feeds agree; an accepted body's output is exactly its chunks'
#                   data (length = sum of chunk sizes); bodies built from the input decode to what was put in.
#   dns-decoder     decodeResponse: no read outside the message (AddressSanitizer), decoded names are valid, a
#                   decoded message re-encoded without compression decodes to itself, queries round-trip.
#   gateway-config  loadConfig: loads, or every error is `file:line: message` for a line the file has.
#   websocket-reader MessageReader (server and client roles): whole, split and byte-by-byte feeds give the same
#                   events and close code; no message is longer than the configured max; text and close reasons
#                   are valid UTF-8 (checked by the standard library); a wrongly masked frame fails with 1002;
#                   a stream built from valid frames (fragments split inside characters, pings between them)
#                   reads back as built, and a built violation fails with the code RFC 6455 names.
#
# The targets are not SwiftPM products here: each module a harness needs is compiled once with swiftc into
# .build-fuzz/ (coverage instrumentation and AddressSanitizer), then linked with the harness and libFuzzer.
#
# Usage:
#   Tests/Fuzz/fuzz.sh build [harness...]   build (all harnesses when none is named)
#   Tests/Fuzz/fuzz.sh smoke [harness...]   build, then run each for SMOKE_SECONDS (default 10) from its seeds
#   Tests/Fuzz/fuzz.sh long  [harness...]   build, then run each to LONG_RUNS executions (default 10,000,000)
#   Tests/Fuzz/fuzz.sh list                 print the harness names
# `make fuzz-smoke` and `make fuzz-long` call the last two. A run fails on the first crash or broken invariant;
# the input is saved as .build-fuzz/crashes/<harness>-crash-<sha1>; replay it with
#   SWIFT_BACKTRACE=enable=no .build-fuzz/bin/<harness> .build-fuzz/crashes/<harness>-crash-<sha1>
# Seeds live in Tests/Fuzz/corpus/<harness>/ (checked in, never written); inputs a long run finds go to
# .build-fuzz/corpus/<harness>/ and are reused by the next long run.
#
# Every crash found becomes a test in the matching test target (FuzzRegressionTests.swift). Until it is fixed, a
# harness may list it as a known finding that FUZZ_SKIP_KNOWN=1 lets a long run go past (see the harness's
# `skipKnown`); the smoke run never sets it, so `make test` stays red while a finding is open.
#
# Adding a harness: write Tests/Fuzz/<Name>.swift with LLVMFuzzerTestOneInput, add a line to HARNESSES below (and
# its module to MODULES if it is new), and put a few seeds in Tests/Fuzz/corpus/<harness>/.
set -euo pipefail
cd "$(dirname "$0")/../.."

SWIFTC=${SWIFTC:-swiftc}
OUT=.build-fuzz
SMOKE_SECONDS=${SMOKE_SECONDS:-10}
LONG_RUNS=${LONG_RUNS:-10000000}
FLAGS=(-O -parse-as-library -sanitize=fuzzer,address -I "$OUT/modules")
for c in Sources/C*/; do FLAGS+=(-I "$c"); done

# Modules the harnesses use, in dependency order: "module|link flags its C dependencies need".
MODULES=(
    "HTTP1|"
    "DNS|"
    "Routing|-lpcre2-8"
    "GatewayConfig|"
    "WebSocket|-lssl -lcrypto"
)

# One line per harness: "name|source in Tests/Fuzz|modules it links (with what they depend on)|libFuzzer options".
# Inputs are capped (-max_len) near what the harness needs, since every byte costs time on a shared 2-core machine:
# the parsers' limits are reached with small limits the harnesses choose, a DNS message over UDP is 1232 bytes.
HARNESSES=(
    "http1-head|HTTP1Head.swift|HTTP1|-max_len=1024"
    "http1-chunked|HTTP1Chunked.swift|HTTP1|-max_len=1024"
    "dns-decoder|DNSDecoder.swift|DNS|-max_len=1232"
    "gateway-config|GatewayConfigLoader.swift|DNS Routing GatewayConfig|-max_len=2048"
    "websocket-reader|WebSocketReader.swift|WebSocket|-max_len=1024"
)

field() { cut -d'|' -f"$2" <<<"$1"; }
harness_line() {
    local h
    for h in "${HARNESSES[@]}"; do [[ $(field "$h" 1) == "$1" ]] && { echo "$h"; return; }; done
    echo "fuzz.sh: no harness '$1' (have: $(list | tr '\n' ' '))" >&2
    exit 2
}
list() { local h; for h in "${HARNESSES[@]}"; do field "$h" 1; done; }
module_libs() {
    local m
    for m in "${MODULES[@]}"; do [[ $(field "$m" 1) == "$1" ]] && field "$m" 2; done
}

# Compiles Sources/<module> into $OUT/modules (interface) and $OUT/obj (code) unless they are newer than its sources.
build_module() {
    local module=$1 object="$OUT/obj/$1.o"
    if [[ -f $object ]] && [[ -z $(find "Sources/$module" -name '*.swift' -newer "$object") ]]; then return; fi
    echo "fuzz: compiling module $module"
    mkdir -p "$OUT/modules" "$OUT/obj"
    "$SWIFTC" "${FLAGS[@]}" -wmo -module-name "$module" -emit-module -emit-module-path "$OUT/modules/$module.swiftmodule" \
        -c Sources/"$module"/*.swift -o "$object"
}

build_harness() {
    local line name source modules binary m objects=() libs=()
    line=$(harness_line "$1")
    name=$(field "$line" 1)
    source=Tests/Fuzz/$(field "$line" 2)
    read -ra modules <<<"$(field "$line" 3)"
    for m in "${modules[@]}"; do
        build_module "$m"
        objects+=("$OUT/obj/$m.o")
        read -ra more <<<"$(module_libs "$m")"
        libs+=("${more[@]}")
    done
    binary="$OUT/bin/$name"
    if [[ -f $binary && ! $source -nt $binary ]]; then
        local newer=0 o
        for o in "${objects[@]}"; do [[ $o -nt $binary ]] && newer=1; done
        [[ $newer == 0 ]] && return
    fi
    echo "fuzz: linking $name"
    mkdir -p "$OUT/bin"
    "$SWIFTC" "${FLAGS[@]}" -use-ld=lld -module-name "Fuzz_${name//-/_}" "$source" "${objects[@]}" "${libs[@]}" -o "$binary"
}

# Runs one harness with libFuzzer options; prints a one-line summary; fails on a crash.
run_harness() {
    local name=$1 log options
    shift
    read -ra options <<<"$(field "$(harness_line "$name")" 4)"
    # The smoke run starts from the seeds alone, so its time does not grow with what long runs saved.
    local corpus_dir="$OUT/corpus/$name"
    if [[ $command == smoke ]]; then
        corpus_dir="$OUT/smoke-corpus/$name"
        rm -rf "$corpus_dir"
    fi
    mkdir -p "$corpus_dir" "$OUT/crashes" "$OUT/logs"
    log="$OUT/logs/$name-$command.log"
    local start=$SECONDS status=0
    # Leak checking stays off: the Swift runtime's metadata caches live until exit and are not leaks. Swift's own
    # backtracer stays off: it reads the stack in a way AddressSanitizer reports, hiding the real failure. No
    # allocation stacks are recorded (a tenth of the time went there); replaying a saved input shows them.
    SWIFT_BACKTRACE=enable=no ASAN_OPTIONS=${ASAN_OPTIONS:-malloc_context_size=0} "$OUT/bin/$name" \
        -detect_leaks=0 -timeout=25 -rss_limit_mb=4096 -print_final_stats=1 -artifact_prefix="$OUT/crashes/$name-" \
        "${options[@]}" "$@" "$corpus_dir" "Tests/Fuzz/corpus/$name" >"$log" 2>&1 || status=$?
    local runs corpus
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
    corpus=$(find "$corpus_dir" -type f | wc -l)
    # libFuzzer exits 72 when interrupted (Ctrl-C, SIGINT): a stopped run, not a crash.
    local crashes=0
    [[ $status != 0 && $status != 72 ]] && crashes=1
    printf 'fuzz: %-15s executions %10s  seconds %5d  crashes %d  corpus %d (+%d seeds)\n' "$name" "$runs" \
        $((SECONDS - start)) "$crashes" "$corpus" "$(find "Tests/Fuzz/corpus/$name" -type f | wc -l)"
    if [[ $status == 72 ]]; then
        echo "fuzz: $name interrupted before its run limit"
        return 1
    elif [[ $status != 0 ]]; then
        echo "fuzz: $name FAILED (exit $status); from $log:"
        grep -E 'invariant broken|ERROR: AddressSanitizer|ERROR: libFuzzer|Fatal error|Test unit written|SUMMARY' "$log" |
            head -20 || tail -30 "$log"
        return 1
    fi
}

command=${1:-smoke}
shift || true
names=("$@")
[[ ${#names[@]} == 0 ]] && mapfile -t names < <(list)
case $command in
list) list ;;
build) for n in "${names[@]}"; do build_harness "$n"; done ;;
smoke | long)
    [[ $command == smoke ]] && unset FUZZ_SKIP_KNOWN
    for n in "${names[@]}"; do build_harness "$n"; done
    failed=0
    for n in "${names[@]}"; do
        if [[ $command == smoke ]]; then
            run_harness "$n" -max_total_time="$SMOKE_SECONDS" || failed=1
        else
            run_harness "$n" -runs="$LONG_RUNS" || failed=1
        fi
    done
    exit $failed
    ;;
*)
    echo "usage: $0 build|smoke|long|list [harness...]" >&2
    exit 2
    ;;
esac
