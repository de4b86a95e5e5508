#!/usr/bin/env bash
# The whole test suite: formatting, vet, the platform builds, and every
# test with the race detector. Long runs are opt-in: COWFILE_LONG=1.
set -euo pipefail
cd "$(dirname "$0")"

echo "== gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
	echo "not gofmt'ed:"; echo "$unformatted"; exit 1
fi

echo "== go vet"
go vet ./...

echo "== platform builds"
for os in darwin windows freebsd; do
	GOOS=$os GOARCH=amd64 go build ./...
done
GOOS=linux GOARCH=386 go build ./...

echo "== tests (race detector)"
go test -race -count=1 -timeout 20m ./...

if [ -f bench/go.mod ]; then
	echo "== bench module (quick run)"
	(cd bench && go vet ./... && go test -count=1 -timeout 10m ./...)
fi
