#!/usr/bin/env bash
# A self-signed certificate for a trial of docker-compose.yml: deploy/make-trial-cert.sh HOST [DIR]
#
# Writes DIR/fullchain.pem and DIR/privkey.pem (DIR: deploy/certs), the two files nginx reads
# (TLS_CERT and TLS_KEY in docker-compose.yml default to them). Browsers warn about a
# self-signed certificate: fine for a trial, never for patients. For a hospital, use a
# certificate from a certificate authority and point TLS_CERT and TLS_KEY at it.
set -euo pipefail
host="${1:?usage: deploy/make-trial-cert.sh HOST [DIR], e.g. deploy/make-trial-cert.sh telerounds.benhvien.example}"
dir="${2:-$(cd "$(dirname "$0")" && pwd)/certs}"
case "$host" in
  *[!A-Za-z0-9.-]*) echo "make-trial-cert: HOST must be a host name or an IPv4 address, got '$host'" >&2; exit 2 ;;
esac
if [[ "$host" =~ ^[0-9.]+$ ]]; then san="IP:${host}"; else san="DNS:${host}"; fi
mkdir -p "$dir"
umask 077  # the key is readable by its owner only
openssl req -x509 -newkey rsa:2048 -sha256 -nodes -days 90 \
  -subj "/CN=${host}" \
  -addext "subjectAltName=${san}" \
  -addext "keyUsage=digitalSignature,keyEncipherment" \
  -addext "extendedKeyUsage=serverAuth" \
  -keyout "$dir/privkey.pem" -out "$dir/fullchain.pem" 2>/dev/null
chmod 644 "$dir/fullchain.pem"
# The key stays 0600: nginx reads it as root before it starts its workers.
echo "wrote $dir/fullchain.pem and $dir/privkey.pem for ${host} (self-signed, 90 days)"
