"""The image's HEALTHCHECK: GET a health path of the server in this container, exit 0 if 200.

Usage: ``python /opt/ghaf-healthcheck.py PORT PATH``. The server speaks TLS when
GHAF_TLS__CERT_FILE is set; the check then trusts that very certificate as its anchor (it
asks its own container over loopback, so the certificate is checked, not the name).
"""

import os
import ssl
import sys
import urllib.request


def main(port: str, path: str) -> int:
    cert = os.environ.get("GHAF_TLS__CERT_FILE")
    context = None
    if cert:
        context = ssl.create_default_context(cafile=cert)
        context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN  # the leaf is the anchor
        context.check_hostname = False
    url = f"{'https' if cert else 'http'}://127.0.0.1:{port}{path}"
    try:
        with urllib.request.urlopen(url, timeout=3, context=context) as answer:  # noqa: S310
            return 0 if answer.status == 200 else 1
    except OSError as exc:
        print(f"unhealthy: {url}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
