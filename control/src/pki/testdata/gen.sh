#!/bin/sh
# Makes the test PKI with strongSwan's `pki` (Debian strongswan-pki): a lab CA, R1 and R2
# (IP, FQDN and DN identities), an expired R2, a revoked R3 with the CA's CRL, and a
# second CA with its own R2. Test keys only. Run it here to regenerate; the tests read
# what it wrote.
set -eu
cd "$(dirname "$0")"
pki --gen --type rsa --size 2048 --outform pem > ca.key
pki --self --ca --lifetime 7300 --in ca.key --dn "C=CH, O=espgw lab, CN=Lab CA" --outform pem > ca.pem
for r in r1:172.16.172.10 r2:172.16.172.20 r3:172.16.172.30; do
  n=${r%%:*}; ip=${r#*:}
  pki --gen --type rsa --size 2048 --outform pem > $n.key
  pki --pub --in $n.key | pki --issue --lifetime 7000 --cacert ca.pem --cakey ca.key \
    --dn "C=CH, O=espgw lab, CN=$n.lab.example" --san $n.lab.example --san $ip \
    --flag serverAuth --flag ikeIntermediate --outform pem > $n.pem
done
# Expired: valid for one day, ten years ago.
pki --pub --in r2.key | pki --issue --cacert ca.pem --cakey ca.key \
  --not-before "Jan 01 00:00:00 2015" --not-after "Jan 02 00:00:00 2015" --dateform "%b %d %H:%M:%S %Y" \
  --dn "C=CH, O=espgw lab, CN=r2.lab.example" --san r2.lab.example --san 172.16.172.20 \
  --outform pem > r2-expired.pem
pki --signcrl --cacert ca.pem --cakey ca.key --lifetime 7000 --cert r3.pem --outform pem > ca.crl
# Another CA, and an R2 certificate from it.
pki --gen --type rsa --size 2048 --outform pem > other-ca.key
pki --self --ca --lifetime 7300 --in other-ca.key --dn "C=CH, O=other, CN=Other CA" --outform pem > other-ca.pem
pki --pub --in r2.key | pki --issue --lifetime 7000 --cacert other-ca.pem --cakey other-ca.key \
  --dn "C=CH, O=espgw lab, CN=r2.lab.example" --san r2.lab.example --san 172.16.172.20 --outform pem > r2-other-ca.pem
