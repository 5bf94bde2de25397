#!/bin/sh
# The 4096-bit test PKI (strongSwan's `pki`): a CA and R1/R2 with 4096-bit keys, IP and
# FQDN identities. Their MM5/MM6/AM2/AM3 exceed a 1500-byte path, so they only pass with
# IKE fragmentation. Test keys only. gen.sh makes the 2048-bit set.
set -eu
cd "$(dirname "$0")"
pki --gen --type rsa --size 4096 --outform pem > ca4096.key
pki --self --ca --lifetime 7300 --in ca4096.key --dn "C=CH, O=espgw lab, CN=Lab CA 4096" --outform pem > ca4096.pem
for r in r1:172.16.172.10 r2:172.16.172.20; do
  n=${r%%:*}; ip=${r#*:}
  pki --gen --type rsa --size 4096 --outform pem > $n-4096.key
  pki --pub --in $n-4096.key | pki --issue --lifetime 7000 --cacert ca4096.pem --cakey ca4096.key \
    --dn "C=CH, O=espgw lab, CN=$n.lab.example" --san $n.lab.example --san $ip \
    --flag serverAuth --flag ikeIntermediate --outform pem > $n-4096.pem
done
# An empty CRL of the 4096-bit CA (trustpoints with `revocation-check crl` need one).
pki --signcrl --cacert ca4096.pem --cakey ca4096.key --lifetime 7000 --outform pem > ca4096.crl
