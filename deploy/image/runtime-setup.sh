#!/bin/sh
# The runtime stage of both images (Dockerfile, Dockerfile.prebuilt): exactly the shared libraries the
# `leaderboard` binary links beyond glibc (checked by scripts/deploy-check with ldd inside the image), a non-root
# user, and the data directories. The Swift runtime is linked statically (--static-swift-stdlib).
#   libhiredis0.14  Redis protocol (Sources/CHiredis)
#   libssl3         libcrypto: RSA PKCS#1 v1.5 for DeepStressModel packages (Sources/COpenSSL)
#   libcurl4        what Foundation's URLSession (FoundationNetworking) runs on; the CLI client commands use it
#   ca-certificates TLS to PostgreSQL, Redis and SMTP with public certificates
#   postgresql-client  pg_dump / pg_restore for `leaderboard backup` on PostgreSQL (Debian 12: version 15; for a
#                   newer server point backup-pg-bin-dir at matching tools, docs/OPERATIONS.md)
set -eu
apt-get update
apt-get install -y --no-install-recommends ca-certificates libcurl4 libhiredis0.14 libssl3 postgresql-client tzdata
apt-get clean
rm -rf /var/lib/apt/lists/* /var/cache/apt/* /var/log/apt /var/log/dpkg.log
groupadd --system --gid 10001 leaderboard
useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/leaderboard --shell /usr/sbin/nologin leaderboard
install -d -o 10001 -g 10001 -m 0750 /var/lib/leaderboard /var/lib/leaderboard/data /var/lib/leaderboard/datasets
