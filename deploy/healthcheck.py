#!/usr/bin/env python3
"""Exit 0 when an HTTP GET succeeds (2xx) and, with --expect, the body contains a text.

The container health checks of the API and the worker run it, because the slim Python image
has neither curl nor wget. It uses the standard library only.
"""

from __future__ import annotations

import argparse
import sys
import urllib.error
import urllib.request

TIMEOUT_SECONDS = 5.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("url", help="URL to GET, such as http://127.0.0.1:8000/healthz")
    parser.add_argument("--expect", help="text that the response body must contain")
    args = parser.parse_args(argv)

    try:
        with urllib.request.urlopen(args.url, timeout=TIMEOUT_SECONDS) as response:
            body = response.read().decode("utf-8", errors="replace")
    except urllib.error.HTTPError as err:
        sys.stderr.write(f"{args.url} returned HTTP {err.code}\n")
        return 1
    except (urllib.error.URLError, OSError) as err:
        sys.stderr.write(f"{args.url} is unreachable: {err}\n")
        return 1

    if args.expect and args.expect not in body:
        sys.stderr.write(f"{args.url} returned a body without {args.expect!r}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
