"""``python -m indexlab.api``: print the API's JSON Schema, or write it to a file.

``python -m indexlab.api --write-schema docs/api-schema.json`` regenerates the checked-in copy.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from indexlab.api import schema_json


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m indexlab.api")
    parser.add_argument("--write-schema", metavar="PATH", help="write the JSON Schema to PATH")
    args = parser.parse_args(argv)
    text = schema_json()
    if args.write_schema:
        Path(args.write_schema).write_text(text, encoding="utf-8")
        print(f"wrote {args.write_schema}")
    else:
        print(text, end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
