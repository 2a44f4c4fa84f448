#!/bin/sh
# extract_snippets.sh OUTDIR - writes every code block of README.md and the TL;DR of rsbus.h's manual to
# OUTDIR, so that make test compiles the C ones and tests/test_docs.c runs them:
#   OUTDIR/readme_c_N.c    the N-th ```c block of README.md (each a complete program)
#   OUTDIR/readme_sh_N.sh  the N-th ```sh block
#   OUTDIR/tldr.c          the TL;DR example of rsbus.h
set -e
out=$1
mkdir -p "$out"
rm -f "$out"/readme_c_*.c "$out"/readme_sh_*.sh "$out"/tldr.c
awk -v out="$out" '
/^```c$/  { n_c++; file = out "/readme_c_" n_c ".c"; next }
/^```sh$/ { n_sh++; file = out "/readme_sh_" n_sh ".sh"; next }
/^```/    { if (file) close(file); file = ""; next }
file      { print > file }
' README.md
# the TL;DR: from "#define _POSIX_C_SOURCE" to the first line that is only "}" after main, unindented by 8
awk '
/^    TL;DR/ { on = 1; next }
on && /^    [A-Z]+$/ { exit }
on { sub(/^        /, ""); print }
' rsbus.h > "$out/tldr.c"
