#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
#
# Test PKI for the TLS tests: make-certs.sh OUTDIR. Each OUTDIR/NAME is a
# credentials directory as vxhsd --tls-dir and the client's tls_dir take
# (ca.pem, cert.pem, key.pem):
#   agent            agent; names localhost and 127.0.0.1
#   agent-wrongname  agent; names elsewhere.test only
#   agent-crl        agent, with a CRL revoking gw-revoked
#   gw-a, gw-ro      gateways (clients) gw-a.test and gw-ro.test
#   gw-wrongca       gw-a's certificate, but trusts another CA
#   gw-foreign       a client certificate from another CA
#   gw-expired       a client certificate that expired in 2020
#   gw-revoked       a client certificate on agent-crl's CRL
#   gw-serveronly    gw-a.test, but a certificate for TLS servers only
#   agent-clientonly an agent naming localhost, with a client-only certificate
set -euo pipefail

OUT=${1:?usage: make-certs.sh OUTDIR}
command -v certtool >/dev/null || {
	echo "make-certs.sh: certtool is missing (apt-get install gnutls-bin)" >&2
	exit 1
}
rm -rf "$OUT"
mkdir -p "$OUT/pki"
cd "$OUT/pki"

key() { certtool --generate-privkey --key-type=ecdsa --outfile "$1.key" 2>/dev/null; }

ca() {
	key "$1"
	printf 'cn = "%s"\nca\ncert_signing_key\ncrl_signing_key\nexpiration_days = 3650\n' \
		"$1" >"$1.tmpl"
	certtool --generate-self-signed --load-privkey "$1.key" \
		--template "$1.tmpl" --outfile "$1.pem" 2>/dev/null
}

# cert NAME CA TEMPLATE-LINES...
cert() {
	local name=$1 ca=$2
	shift 2
	key "$name"
	printf '%s\n' "cn = \"$name\"" signing_key "$@" >"$name.tmpl"
	certtool --generate-certificate --load-privkey "$name.key" \
		--load-ca-certificate "$ca.pem" --load-ca-privkey "$ca.key" \
		--template "$name.tmpl" --outfile "$name.pem" 2>/dev/null
}

# dir NAME TRUSTED-CA CERT
dir() {
	mkdir -p "$OUT/$1"
	cp "$2.pem" "$OUT/$1/ca.pem"
	cp "$3.pem" "$OUT/$1/cert.pem"
	install -m 600 "$3.key" "$OUT/$1/key.pem"
}

ca ca
ca ca2
server='tls_www_server'
client='tls_www_client'
cert agent ca "$server" 'dns_name = "localhost"' 'ip_address = "127.0.0.1"' \
	'expiration_days = 3650'
cert wrongname ca "$server" 'dns_name = "elsewhere.test"' 'expiration_days = 3650'
cert gw-a ca "$client" 'dns_name = "gw-a.test"' 'expiration_days = 3650'
cert gw-ro ca "$client" 'dns_name = "gw-ro.test"' 'expiration_days = 3650'
cert gw-foreign ca2 "$client" 'dns_name = "gw-a.test"' 'expiration_days = 3650'
cert gw-expired ca "$client" 'dns_name = "gw-a.test"' \
	'activation_date = "2019-01-01 00:00:00"' \
	'expiration_date = "2020-01-01 00:00:00"'
cert gw-revoked ca "$client" 'dns_name = "gw-a.test"' 'expiration_days = 3650'
cert gw-serveronly ca "$server" 'dns_name = "gw-a.test"' 'expiration_days = 3650'
cert clientonly ca "$client" 'dns_name = "localhost"' 'ip_address = "127.0.0.1"' \
	'expiration_days = 3650'

dir agent ca agent
dir agent-wrongname ca wrongname
dir agent-crl ca agent
printf 'crl_next_update = 365\ncrl_number = 1\n' >crl.tmpl
certtool --generate-crl --load-ca-privkey ca.key --load-ca-certificate ca.pem \
	--load-certificate gw-revoked.pem --template crl.tmpl \
	--outfile "$OUT/agent-crl/crl.pem" 2>/dev/null
dir gw-a ca gw-a
dir gw-ro ca gw-ro
dir gw-wrongca ca2 gw-a
dir gw-foreign ca gw-foreign
dir gw-expired ca gw-expired
dir gw-revoked ca gw-revoked
dir gw-serveronly ca gw-serveronly
dir agent-clientonly ca clientonly
echo "test PKI in $OUT"
