#!/bin/bash
# fuzz/run.sh - build the libFuzzer targets, replay every saved regression
# input, then fuzz each target for a bounded time. Exit 1 on any crash, leak,
# timeout or violated property; each new crashing input is copied to
# fuzz/regressions/<target>/ so that every later run replays it.
#
#   FUZZ_SECONDS=60     fuzzing time per target (0: replay only)
#   FUZZ_TARGETS="..."  a subset (default: every target `make targets` lists)
#   FUZZ_JOBS=1         parallel fuzzing processes per target (-fork)
#   FUZZ_SEED=N         libFuzzer's random seed (default: a new one per run).
#                       `make test` fixes it, so that CI explores the same
#                       inputs on every clean clone and a red run is one that
#                       anybody can replay; `make fuzz` explores anew.
#
# The working corpus grows in fuzz/build/corpus/<target> (seeded from
# fuzz/corpus/<target>); the repository corpus is left as it is.
set -uo pipefail
cd "$(dirname "$0")"

FUZZ_SECONDS=${FUZZ_SECONDS:-60}
FUZZ_JOBS=${FUZZ_JOBS:-1}
FUZZ_SEED=${FUZZ_SEED:-}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:symbolize=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
# The option parser reads HAPPAC_* and HAPPAC_CONFIG: fuzz with a clean slate.
while read -r v; do unset "$v"; done < <(env | sed -n 's/^\(HAPPAC_[A-Za-z0-9_]*\)=.*/\1/p')

if ! command -v "${CLANG:-clang-14}" >/dev/null; then
	echo "fuzz: ${CLANG:-clang-14} not found (apt-get install clang-14)" >&2
	exit 2
fi
mkdir -p build
make --no-print-directory -s -j2 all >build/build.log 2>&1 || { cat build/build.log >&2; exit 2; }
TARGETS=${FUZZ_TARGETS:-$(make --no-print-directory -s targets)}

failed=()
for t in $TARGETS; do
	bin=build/fuzz_$t
	[ -x "$bin" ] || { echo "fuzz: no binary $bin" >&2; failed+=("$t(build)"); continue; }
	mkdir -p "build/corpus/$t" "build/artifacts/$t" build/logs
	log=build/logs/$t.log

	# 1. Regressions: every input that ever crashed must now pass. One run
	# per input, so that every still-failing input is named.
	bad=0 n=0
	for f in regressions/"$t"/*; do
		[ -f "$f" ] || continue
		n=$((n + 1))
		if ! "$bin" -runs=1 "$f" </dev/null >"$log.replay" 2>&1; then
			echo "FAIL $t: regression input fuzz/$f crashes:" >&2
			grep -E '^(==[0-9]+==ERROR|SUMMARY|fuzz property|READ|WRITE)|src/[a-z_]+\.c:' \
				"$log.replay" | head -8 | sed 's/^/     /' >&2
			bad=1
		fi
	done
	if [ $bad -ne 0 ]; then
		failed+=("$t(regression)")
		continue # fuzzing would only find the same crash again
	fi
	[ $n -gt 0 ] && echo "ok   $t: $n regression input(s) replayed"
	[ "$FUZZ_SECONDS" -gt 0 ] || continue

	# 2. Fuzz for a bounded time.
	cp -n corpus/"$t"/* "build/corpus/$t/" 2>/dev/null
	dict=()
	[ -f "dict/$t.dict" ] && dict=(-dict="dict/$t.dict")
	[ "$t" = options_file ] && dict=(-dict=dict/options.dict)
	extra=()
	[ "$FUZZ_JOBS" -gt 1 ] && extra=(-fork="$FUZZ_JOBS")
	[ -n "$FUZZ_SEED" ] && extra+=(-seed="$FUZZ_SEED")
	rm -f build/artifacts/"$t"/*
	start=$SECONDS
	"$bin" "build/corpus/$t" "corpus/$t" "${dict[@]}" "${extra[@]}" \
		-max_total_time="$FUZZ_SECONDS" -timeout=10 -rss_limit_mb=2048 \
		-max_len=4096 -print_final_stats=1 \
		-artifact_prefix="build/artifacts/$t/" </dev/null >"$log" 2>&1
	rc=$?
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
	cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -1)
	if [ $rc -ne 0 ] || compgen -G "build/artifacts/$t/*" >/dev/null; then
		mkdir -p "regressions/$t"
		for a in build/artifacts/"$t"/*; do
			[ -f "$a" ] || continue
			cp "$a" "regressions/$t/"
			echo "FAIL $t: new crashing input saved as fuzz/regressions/$t/$(basename "$a")" >&2
		done
		grep -E '^(==|SUMMARY|fuzz property|    #[0-9]+ )' "$log" | head -40 >&2
		echo "     full log: fuzz/$log" >&2
		failed+=("$t")
	else
		echo "ok   $t: $((SECONDS - start))s, ${execs:-?} runs, ${cov:-cov: ?}, corpus $(ls "build/corpus/$t" | wc -l)"
	fi
done

if [ ${#failed[@]} -gt 0 ]; then
	echo "fuzz: FAILED: ${failed[*]}" >&2
	exit 1
fi
echo "fuzz: all targets clean"
