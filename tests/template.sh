#!/bin/sh
# Installs ward from BUILD into a staging prefix, then builds and tests
# sdk/template against that installed SDK alone: what a plugin author gets.
set -eu
build=$1 src=$2
stage=$(mktemp -d /tmp/ward-sdk-XXXXXX)
trap 'rm -rf "$stage"' EXIT
cmake --install "$build" --prefix "$stage/prefix" >/dev/null
cmake -S "$src/sdk/template" -B "$stage/build" -DCMAKE_PREFIX_PATH="$stage/prefix" >/dev/null
cmake --build "$stage/build" >/dev/null
ctest --test-dir "$stage/build" --output-on-failure
# pkg-config works too: the plugin builds with nothing but <ward.h>.
PKG_CONFIG_PATH=$(dirname "$(find "$stage/prefix" -name ward.pc)") \
	cc -shared -fPIC -Wall -Wextra -Werror $(PKG_CONFIG_PATH=$(dirname "$(find "$stage/prefix" -name ward.pc)") pkg-config --cflags ward) \
	-o "$stage/greeter.so" "$src/sdk/template/greeter.c"
"$stage/prefix/bin/ward" test "$stage/greeter.so" count=1 interval=10ms
