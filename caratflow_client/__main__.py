"""`python -m caratflow_client METHOD PATH`: send one signed request and print the response.

The key comes from CARATFLOW_KEY_ID and CARATFLOW_API_SECRET (not arguments: they would land in
shell history and process listings); the API's base URL from CARATFLOW_API_URL.
"""

from __future__ import annotations

import argparse
import json
import sys

from caratflow_client.client import CaratflowClient


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m caratflow_client", description=__doc__.splitlines()[0])
    parser.add_argument("method", choices=["GET", "POST", "PUT", "PATCH", "DELETE"])
    parser.add_argument("path", help="path and query, e.g. '/api/v1/diamonds?shape=ROUND&limit=3'")
    parser.add_argument("--data", help="JSON request body")
    args = parser.parse_args(argv)
    try:
        client = CaratflowClient.from_environment()
    except KeyError as exc:
        print(exc.args[0], file=sys.stderr)
        return 2
    with client:
        headers = {"content-type": "application/json"} if args.data else {}
        response = client.http.request(args.method, args.path, content=args.data, headers=headers)
    print(f"HTTP {response.status_code}", file=sys.stderr)
    try:
        print(json.dumps(response.json(), indent=2))
    except ValueError:
        print(response.text)
    return 0 if response.is_success else 1


if __name__ == "__main__":
    sys.exit(main())
