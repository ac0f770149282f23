#!/usr/bin/env bash
# The test command (README, CI): installs what the tests need, checks
# formatting, vet and go.mod tidiness, then runs every test with -race.
# Usage: ./scripts/test.sh [go test flags...]
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/deps.sh

files=$(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './.git/*')
unformatted=$(gofmt -l $files)
if [ -n "$unformatted" ]; then
  echo "gofmt needed on:"; echo "$unformatted"; exit 1
fi
go vet ./...
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
cp go.mod go.sum "$tmp"/
go mod tidy
if ! cmp -s go.mod "$tmp/go.mod" || ! cmp -s go.sum "$tmp/go.sum"; then
  cp "$tmp/go.mod" "$tmp/go.sum" .
  echo "go mod tidy would change go.mod/go.sum: run it and commit the result"; exit 1
fi
go test -race -count=1 -timeout 30m "$@" ./...
